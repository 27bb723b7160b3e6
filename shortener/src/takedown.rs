//! `shortener links show|disable|enable|free CODE`: what an operator answering an abuse report needs, and freeing
//! an expired alias for a new link. Disabling sets
//! the link's `disabled_at` (the redirect answers 410 for it) and delivers the invalidation like a delete does:
//! queued in the same statement, sent at once, and retried by every running shortener while Redis fails.

use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use database::DbError;
use links::{
    cache::RedisCache,
    outbox::Owed,
    store::Store,
    takedown::{Found, LinkReport},
};
use prometheus::Registry;

use crate::{
    config::{LinksArgs, LinksCommand},
    outbox::Invalidations,
};

/// Exit status when no link has the code (1 is any other failure, 2 a bad command line).
pub const EXIT_UNKNOWN_CODE: u8 = 3;

/// What a disable or enable did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Done, and every replica told.
    Delivered,
    /// Done; Redis did not take the invalidation, so it waits in the outbox for a running shortener.
    Queued,
    /// No link has the code.
    NoSuchLink,
}

/// Runs one `links` subcommand.
///
/// # Errors
/// When PostgreSQL is unreachable or Redis's URL is invalid.
pub async fn run(args: LinksArgs) -> anyhow::Result<ExitCode> {
    let store = crate::stores::connect_and_migrate(&args.database).await?;
    match &args.command {
        LinksCommand::Show { code } => {
            let found = store
                .find_for_operator(code)
                .await
                .context("cannot read the link")?;
            Ok(show(code, &found, Utc::now()))
        }
        LinksCommand::Disable { code, reason } => {
            let invalidations = connect(&args, &store).await?;
            let change = disable(&store, &invalidations, code, reason).await;
            invalidations.quit().await;
            Ok(report(
                code,
                change.context("cannot change the link")?,
                "disabled: every redirect replica answers 410",
            ))
        }
        LinksCommand::Free { code } => {
            let invalidations = connect(&args, &store).await?;
            let change = free(&store, &invalidations, code).await;
            invalidations.quit().await;
            match change.context("cannot free the code")? {
                Change::NoSuchLink => not_freed(&store, code).await,
                change => Ok(report(code, change, "freed: a new link may take it")),
            }
        }
        LinksCommand::Enable { code } => {
            let invalidations = connect(&args, &store).await?;
            let change = enable(&store, &invalidations, code).await;
            invalidations.quit().await;
            Ok(report(
                code,
                change.context("cannot change the link")?,
                "enabled: every redirect replica redirects again",
            ))
        }
    }
}

async fn connect(args: &LinksArgs, store: &Store) -> anyhow::Result<Invalidations> {
    let cache = RedisCache::connect(&args.redis.options())
        .await
        .context("invalid --redis-url (REDIS_URL)")?;
    Ok(Invalidations::register(
        store.clone(),
        cache,
        &Registry::new(),
    )?)
}

/// Says what a disable or enable did, and exits accordingly.
fn report(code: &str, change: Change, done: &str) -> ExitCode {
    match change {
        Change::Delivered => {
            println!("{code} {done} within a second");
            ExitCode::SUCCESS
        }
        Change::Queued => {
            println!("{code} {done} once Redis is reachable (the invalidation is queued; running shorteners retry it)");
            ExitCode::SUCCESS
        }
        Change::NoSuchLink => no_such_link(code),
    }
}

/// Disables `code` for `reason` and delivers its invalidation.
///
/// # Errors
/// When the database fails (then nothing changed).
pub async fn disable(
    store: &Store,
    invalidations: &Invalidations,
    code: &str,
    reason: &str,
) -> Result<Change, DbError> {
    deliver(invalidations, store.disable_link(code, reason).await?).await
}

/// Enables `code` again and delivers its invalidation.
///
/// # Errors
/// When the database fails (then nothing changed).
pub async fn enable(
    store: &Store,
    invalidations: &Invalidations,
    code: &str,
) -> Result<Change, DbError> {
    deliver(invalidations, store.enable_link(code).await?).await
}

/// Frees `code` (see [`Store::free_code`]) and delivers its invalidation.
///
/// # Errors
/// When the database fails (then nothing changed).
pub async fn free(
    store: &Store,
    invalidations: &Invalidations,
    code: &str,
) -> Result<Change, DbError> {
    deliver(invalidations, store.free_code(code).await?).await
}

/// Says why `code` was not freed: no link ever had it, or its link is live.
async fn not_freed(store: &Store, code: &str) -> anyhow::Result<ExitCode> {
    match store
        .find_for_operator(code)
        .await
        .context("cannot read the link")?
    {
        Found::Link(_) => {
            eprintln!("{code} belongs to a live link: delete it (or let it expire) first");
            Ok(ExitCode::FAILURE)
        }
        Found::Retired(_) | Found::Unknown => Ok(no_such_link(code)),
    }
}

async fn deliver(invalidations: &Invalidations, owed: Option<Owed>) -> Result<Change, DbError> {
    let Some(owed) = owed else {
        return Ok(Change::NoSuchLink);
    };
    Ok(if invalidations.deliver(owed).await {
        Change::Delivered
    } else {
        Change::Queued
    })
}

fn no_such_link(code: &str) -> ExitCode {
    eprintln!("no link has the code {code:?}");
    ExitCode::from(EXIT_UNKNOWN_CODE)
}

/// Prints what was found for `code` as of `now`.
fn show(code: &str, found: &Found, now: DateTime<Utc>) -> ExitCode {
    match found {
        Found::Link(report) => {
            print!("{}", describe(report, now));
            ExitCode::SUCCESS
        }
        Found::Retired(at) => {
            println!(
                "code      {code}\nstate     purged {} (expired or deleted; the code stays taken and answers 410)",
                time(*at)
            );
            ExitCode::SUCCESS
        }
        Found::Unknown => no_such_link(code),
    }
}

/// A link as `links show` prints it: one `field  value` line each.
pub fn describe(report: &LinkReport, now: DateTime<Utc>) -> String {
    let link = &report.link;
    let owner = match (link.owner_id, &report.owner_name) {
        (Some(id), Some(name)) => format!("{name} (API key {id})"),
        (Some(id), None) => format!("API key {id}"),
        (None, _) => "anonymous".to_owned(),
    };
    let expires = link.expires_at.map_or_else(|| "never".to_owned(), time);
    let tags = if link.tags.is_empty() {
        "none".to_owned()
    } else {
        link.tags.join(" ")
    };
    let password = if link.password_hash.is_some() {
        "yes"
    } else {
        "no"
    };
    let limit = link
        .max_hits
        .map_or_else(|| "none".to_owned(), |max| max.to_string());
    format!(
        "code      {}\nlong_url  {}\nowner     {owner}\ncreated   {}\nexpires   {expires}\nredirect  {}\nstate     {}\nhits      {}\nmax_hits  {limit}\npassword  {password}\ntags      {tags}\n",
        link.code,
        link.long_url,
        time(link.created_at),
        link.redirect.code(),
        state(report, now),
        report.hits,
    )
}

/// Every state that applies, most final first: deleted, disabled (with why), expired, at its visit limit; else
/// active.
fn state(report: &LinkReport, now: DateTime<Utc>) -> String {
    let mut states = Vec::new();
    if let Some(at) = report.deleted_at {
        states.push(format!("deleted {}", time(at)));
    }
    if let Some(at) = report.disabled_at {
        let reason = report
            .disabled_reason
            .as_deref()
            .unwrap_or("no reason given");
        states.push(format!("disabled {}: {reason}", time(at)));
    }
    if let Some(at) = report.link.expires_at.filter(|at| *at <= now) {
        states.push(format!("expired {}", time(at)));
    }
    if let Some(at) = report.exhausted_at {
        states.push(format!("visit limit reached {}", time(at)));
    }
    if states.is_empty() {
        "active".to_owned()
    } else {
        states.join("; ")
    }
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%F %T UTC").to_string()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone as _;
    use links::model::{Link, RedirectStatus};

    use super::*;

    fn report() -> LinkReport {
        let created = Utc
            .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
            .single()
            .expect("a time");
        LinkReport {
            link: Link {
                id: 7,
                code: "abc".into(),
                long_url: "https://example.com/".into(),
                created_at: created,
                expires_at: None,
                redirect: RedirectStatus::Found302,
                owner_id: Some(1),
                tags: Vec::new(),
                password_hash: None,
                max_hits: None,
                routing: None,
            },
            owner_name: Some("ci-robot".into()),
            deleted_at: None,
            disabled_at: None,
            disabled_reason: None,
            hits: 12,
            exhausted_at: None,
        }
    }

    #[test]
    fn a_live_link_is_active_and_names_its_owner() {
        let printed = describe(&report(), Utc::now());
        assert!(
            printed.contains("owner     ci-robot (API key 1)"),
            "{printed}"
        );
        assert!(printed.contains("state     active"), "{printed}");
        assert!(printed.contains("hits      12"), "{printed}");
        assert!(printed.contains("password  no"), "{printed}");
        assert!(printed.contains("tags      none"), "{printed}");
    }

    #[test]
    fn a_disabled_and_expired_link_says_both_with_the_reason() {
        let mut report = report();
        let at = report.link.created_at;
        report.disabled_at = Some(at);
        report.disabled_reason = Some("phishing, ticket 42".into());
        report.link.expires_at = Some(at);
        report.link.owner_id = None;
        let printed = describe(&report, Utc::now());
        assert!(
            printed.contains(
                "state     disabled 2026-01-02 03:04:05 UTC: phishing, ticket 42; expired"
            ),
            "{printed}"
        );
        assert!(printed.contains("owner     anonymous"), "{printed}");
    }
}
