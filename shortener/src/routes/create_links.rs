//! Creating links, for one request or a batch alike: one reuse lookup, then insert rounds (a generated code that
//! collided with an alias takes a new ID and code for the next round), then write-through once the links are durable.
//! Where the statements go is the [`Writer`]: the group inserter, or an `Idempotency-Key` transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use links::model::{Link, NewLink, RedirectStatus, Resolution};
use tokio::time::Instant;

use crate::{auth::Creator, errors::ApiError, state::AppState};

/// Rounds of fresh codes for generated codes that collided with an alias (rare: only aliases that look like
/// generated codes).
const GENERATED_CODE_ATTEMPTS: usize = 3;

/// A create request that passed validation.
pub(crate) struct Checked {
    pub(crate) long_url: String,
    pub(crate) alias: Option<String>,
    pub(crate) expires_at: Option<DateTime<Utc>>,
    pub(crate) redirect: RedirectStatus,
    pub(crate) reuse: bool,
    pub(crate) tags: Vec<String>,
    /// The password's hash (hashed before the create, off the async workers).
    pub(crate) password_hash: Option<String>,
    pub(crate) max_hits: Option<i64>,
    /// The host of the link's domain; `None` for the default domain.
    pub(crate) domain: Option<String>,
    /// Its rules and variants as stored, if any.
    pub(crate) routing: Option<String>,
}

impl Checked {
    /// Whether this request may be answered with an existing link: it asked to, and it is plain (no alias, tags,
    /// password or visit limit). Only plain links are reused too (`find_reusable`), so a password or a limit is
    /// never handed to a second requester.
    fn wants_reuse(&self) -> bool {
        self.reuse
            && self.alias.is_none()
            && self.tags.is_empty()
            && self.password_hash.is_none()
            && self.max_hits.is_none()
            && self.domain.is_none()
            && self.routing.is_none()
    }
}

/// How one create request ended.
pub(crate) enum CreateOutcome {
    Created(Link),
    Reused(Link),
    Failed(ApiError),
}

/// Where a create reads and writes.
pub enum Writer<'a> {
    /// Through the group inserter, sharing statements with concurrent requests; each round of a batch commits
    /// on its own, bounded by the request's deadline.
    Grouped(Instant),
    /// In a transaction the caller commits (with the `Idempotency-Key` record), bounded already.
    Transaction(&'a deadpool_postgres::Transaction<'a>),
}

impl Writer<'_> {
    /// Whether a round's links are committed before the next round runs (so a later failure must not hide them).
    fn commits_each_round(&self) -> bool {
        matches!(self, Self::Grouped(_))
    }

    async fn find_reusable(
        &self,
        state: &AppState,
        owner_id: i64,
        long_urls: &[&str],
    ) -> Result<HashMap<String, Link>, ApiError> {
        Ok(match self {
            Self::Grouped(_) => state.store.find_reusable(owner_id, long_urls).await?,
            Self::Transaction(tx) => links::store::find_reusable(*tx, owner_id, long_urls).await?,
        })
    }

    async fn insert(&self, state: &AppState, rows: Vec<NewLink>) -> Result<Vec<Link>, ApiError> {
        Ok(match self {
            Self::Grouped(deadline) => state.inserter.insert(rows, *deadline).await?,
            Self::Transaction(tx) => links::store::insert_links(*tx, &rows).await?,
        })
    }
}

/// Creates every valid request: one reuse lookup for all, then one multi-row insert per round; generated codes
/// that collided with an alias get new IDs and codes for the next round, taken aliases fail with 409. Returns outcomes in
/// the order of `requests`, and the links created. A failure before anything was committed fails the whole
/// call; a round failing after an earlier round committed fails only the items still pending, so the links
/// already made are reported, never lost behind a 503 (a retry would duplicate them).
pub(crate) async fn create_all(
    state: &AppState,
    creator: Creator,
    requests: Vec<Result<Checked, ApiError>>,
    writer: &Writer<'_>,
) -> Result<(Vec<CreateOutcome>, Vec<Link>), ApiError> {
    let reusable = reusable(state, creator, &requests, writer).await?;
    let mut outcomes: Vec<Option<CreateOutcome>> = Vec::with_capacity(requests.len());
    let mut pending: Vec<(usize, Checked)> = Vec::new();
    for (index, request) in requests.into_iter().enumerate() {
        match request {
            Err(error) => outcomes.push(Some(CreateOutcome::Failed(error))),
            Ok(checked) => match reusable_for(&reusable, &checked) {
                Some(link) => outcomes.push(Some(CreateOutcome::Reused(link))),
                None => {
                    outcomes.push(None);
                    pending.push((index, checked));
                }
            },
        }
    }
    let mut created = Vec::new();
    for _ in 0..GENERATED_CODE_ATTEMPTS {
        if pending.is_empty() {
            break;
        }
        let round = std::mem::take(&mut pending);
        let indexes: Vec<usize> = round.iter().map(|(index, _)| *index).collect();
        match insert_round(state, creator, round, &mut outcomes, &mut created, writer).await {
            Ok(retry) => pending = retry,
            Err(error) if writer.commits_each_round() && !created.is_empty() => {
                error.log(None);
                for index in indexes {
                    outcomes[index] = Some(CreateOutcome::Failed(after_committed(&error)));
                }
                break;
            }
            Err(error) => return Err(error),
        }
    }
    for (index, _) in pending {
        outcomes[index] = Some(CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
            "{GENERATED_CODE_ATTEMPTS} generated codes in a row were taken"
        ))));
    }
    let outcomes = outcomes
        .into_iter()
        .map(|outcome| {
            outcome.unwrap_or_else(|| {
                CreateOutcome::Failed(ApiError::Internal(anyhow::anyhow!(
                    "a request went unanswered"
                )))
            })
        })
        .collect();
    Ok((outcomes, created))
}

/// What an item still pending gets when a later round failed (the cause is logged once, by the caller).
fn after_committed(error: &ApiError) -> ApiError {
    match error {
        ApiError::Unavailable { dependency, .. } => ApiError::unavailable(dependency),
        _ => ApiError::Internal(anyhow::anyhow!("a later insert round of this batch failed")),
    }
}

/// One multi-row insert of `pending` with fresh IDs. Inserted links are recorded as created; taken aliases as
/// 409; generated codes that were taken are returned for another round.
async fn insert_round(
    state: &AppState,
    creator: Creator,
    pending: Vec<(usize, Checked)>,
    outcomes: &mut [Option<CreateOutcome>],
    created: &mut Vec<Link>,
    writer: &Writer<'_>,
) -> Result<Vec<(usize, Checked)>, ApiError> {
    let ids = state
        .ids
        .next_ids(pending.len())
        .map_err(|error| ApiError::unavailable_because("the ID generator", error))?;
    let ids = ids
        .into_iter()
        .map(|id| {
            i64::try_from(id)
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("ID {id} exceeds 63 bits")))
        })
        .collect::<Result<Vec<i64>, _>>()?;
    let generated: Vec<i64> = pending
        .iter()
        .zip(&ids)
        .filter(|((_, checked), _)| checked.alias.is_none())
        .map(|(_, id)| *id)
        .collect();
    let mut generated = state.codes.mint(&generated).await?.into_iter();
    let codes: Vec<String> = pending
        .iter()
        .map(|(_, checked)| {
            let code = checked.alias.clone().or_else(|| generated.next())?;
            Some(links::domain::link_key(checked.domain.as_deref(), &code))
        })
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("fewer codes minted than asked")))?;
    let rows: Vec<NewLink> = pending
        .iter()
        .zip(ids.iter().zip(&codes))
        .map(|((_, checked), (id, code))| NewLink {
            id: *id,
            code: code.clone(),
            long_url: checked.long_url.clone(),
            expires_at: checked.expires_at,
            redirect: checked.redirect,
            owner_id: creator.owner_id,
            tags: checked.tags.clone(),
            password_hash: checked.password_hash.clone(),
            max_hits: checked.max_hits,
            routing: checked.routing.clone(),
        })
        .collect();
    let mut inserted: HashMap<i64, Link> = writer
        .insert(state, rows)
        .await?
        .into_iter()
        .map(|link| (link.id, link))
        .collect();
    let mut retry = Vec::new();
    for ((index, checked), (id, code)) in pending.into_iter().zip(ids.iter().zip(codes)) {
        match inserted.remove(id) {
            Some(link) => {
                created.push(link.clone());
                outcomes[index] = Some(CreateOutcome::Created(link));
            }
            None if checked.alias.is_some() => {
                let alias = links::domain::code_of_key(&code).to_owned();
                outcomes[index] = Some(CreateOutcome::Failed(ApiError::AliasTaken(alias)));
            }
            None => {
                tracing::info!(%code, "generated code equals an alias; taking a new code");
                state.code_collisions.inc();
                retry.push((index, checked));
            }
        }
    }
    Ok(retry)
}

/// The caller's live links for the URLs of every request that asked for reuse, looked up by one statement.
async fn reusable(
    state: &AppState,
    creator: Creator,
    requests: &[Result<Checked, ApiError>],
    writer: &Writer<'_>,
) -> Result<HashMap<String, Link>, ApiError> {
    let Some(owner_id) = creator.owner_id else {
        return Ok(HashMap::new());
    };
    let urls: Vec<&str> = requests
        .iter()
        .flatten()
        .filter(|checked| checked.wants_reuse())
        .map(|checked| checked.long_url.as_str())
        .collect();
    if urls.is_empty() {
        // The common case: no connection taken for a lookup nobody asked for.
        return Ok(HashMap::new());
    }
    writer.find_reusable(state, owner_id, &urls).await
}

/// The link `checked` may reuse, if it asked for reuse and there is one. Several items may reuse one link.
fn reusable_for(reusable: &HashMap<String, Link>, checked: &Checked) -> Option<Link> {
    checked
        .wants_reuse()
        .then(|| reusable.get(&checked.long_url).cloned())
        .flatten()
}

/// Counts the links created and writes them through to Redis, once they are durable (committed). Best effort:
/// overwrites any negative entry and announces the codes, so a code that was unknown a moment ago redirects at
/// once on every replica.
pub async fn write_through(state: &AppState, links: &[Link]) {
    if links.is_empty() {
        return;
    }
    state.created.inc_by(links.len() as u64);
    // Behind a breaker: while Redis fails, creates skip it at once (the redirect finds the links in PostgreSQL)
    // instead of each waiting out the command timeout.
    let breaker = &state.redis_breaker;
    if !breaker.allow() {
        state
            .degraded
            .with_label_values(&["redis", "write_through"])
            .inc();
        return;
    }
    let now = state.clock.now();
    let entries: Vec<(&str, Resolution, std::time::Duration)> = links
        .iter()
        .map(|link| {
            let target = link.resolution();
            let ttl = links::cache::ttl_for(&target, state.cache_ttl(), now);
            (link.code.as_str(), target, ttl)
        })
        .collect();
    match breaker.timed(state.cache.put_created(&entries)).await {
        Ok(()) => breaker.succeeded(),
        Err(error) => {
            breaker.failed();
            state
                .degraded
                .with_label_values(&["redis", "write_through"])
                .inc();
            tracing::warn!(error = %plumbing::chain::Chain(&error), links = links.len(), "write-through to Redis skipped");
        }
    }
}
