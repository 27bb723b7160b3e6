//! The operator's `domains add|list|remove`, and `GET /v1/domains`: the hosts links can live on.

use std::process::ExitCode;

use actix_web::{web, HttpResponse};
use anyhow::Context as _;
use links::domain::{Domain, Removal};
use serde::Serialize;

use crate::{
    auth::Caller,
    config::{DomainsArgs, DomainsCommand},
    errors::ApiError,
    routes::body::{RateLimited, Unauthorized, Unavailable},
    state::AppState,
};

/// Exit status of `remove` refused (live links use the domain, or it is the default) or of an unknown host.
const REFUSED: u8 = 3;

/// Runs one `domains` subcommand.
///
/// # Errors
/// When PostgreSQL is unreachable or a host is not one a domain can have.
pub async fn run(args: DomainsArgs) -> anyhow::Result<ExitCode> {
    let store = crate::stores::connect_and_migrate(&args.database).await?;
    match args.command {
        DomainsCommand::Add {
            host,
            root_url,
            not_found_url,
            allow_indexing,
        } => {
            let domain = Domain {
                host: host_of(&host)?,
                is_default: false,
                root_url: root_url.map(String::from),
                not_found_url: not_found_url.map(String::from),
                allow_indexing,
            };
            store
                .put_domain(&domain)
                .await
                .context("cannot register the domain")?;
            println!(
                "{}: registered; every service picks it up within 5 s",
                domain.host
            );
        }
        DomainsCommand::List => {
            let domains = store
                .list_domains()
                .await
                .context("cannot list the domains")?;
            println!("{:<32}  default  indexing  root_url  not_found_url", "host");
            for domain in domains {
                println!(
                    "{:<32}  {:<7}  {:<8}  {}  {}",
                    domain.host,
                    if domain.is_default { "yes" } else { "no" },
                    if domain.allow_indexing {
                        "allowed"
                    } else {
                        "no"
                    },
                    domain.root_url.as_deref().unwrap_or("-"),
                    domain.not_found_url.as_deref().unwrap_or("-"),
                );
            }
        }
        DomainsCommand::Remove { host } => {
            let host = host_of(&host)?;
            let removal = store
                .remove_domain(&host)
                .await
                .context("cannot remove the domain")?;
            match removal {
                Removal::Removed => println!("{host}: removed"),
                Removal::NotFound => return refused(&format!("{host}: no such domain")),
                Removal::IsDefault => {
                    return refused(&format!(
                        "{host}: the default domain (--public-base-url's host) cannot be removed"
                    ))
                }
                Removal::InUse(live) => {
                    return refused(&format!(
                        "{host}: {live} live links use it; delete them (or let them expire) first"
                    ))
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn host_of(raw: &str) -> anyhow::Result<String> {
    links::domain::normalize_host(raw).with_context(|| format!("{raw:?} is not a host name"))
}

fn refused(message: &str) -> anyhow::Result<ExitCode> {
    eprintln!("{message}");
    Ok(ExitCode::from(REFUSED))
}

/// A domain as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainBody {
    /// The host: `"domain"` of a create, `?domain=` of a code-addressed call.
    #[schema(example = "go.example.com")]
    host: String,
    /// Whether links created without a `domain` live on it.
    default: bool,
    /// Where `GET /` redirects on it; null: 404.
    root_url: Option<String>,
    /// Where an unknown code redirects on it; null: the 404 page.
    not_found_url: Option<String>,
    /// Whether search engines may index it.
    allow_indexing: bool,
}

/// The body of `GET /v1/domains`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainsBody {
    /// The default domain first, then by host.
    items: Vec<DomainBody>,
}

/// `GET /v1/domains`: the domains a link can be created on (as every service holds them, reloaded every 5 s).
#[utoipa::path(
    get,
    path = "/v1/domains",
    tag = "domains",
    responses(
        (status = 200, description = "The registered domains", body = DomainsBody),
        (status = 401, response = Unauthorized),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    ),
    security(("api_key" = []))
)]
pub async fn list(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse, ApiError> {
    let items = state
        .domains
        .load()
        .all()
        .into_iter()
        .map(|domain| DomainBody {
            host: domain.host.clone(),
            default: domain.is_default,
            root_url: domain.root_url.clone(),
            not_found_url: domain.not_found_url.clone(),
            allow_indexing: domain.allow_indexing,
        })
        .collect();
    Ok(HttpResponse::Ok().json(DomainsBody { items }))
}
