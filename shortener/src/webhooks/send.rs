//! One delivery: a signed `POST` of an event to a webhook's URL, through a client built once per process.
//!
//! The SSRF guard holds at delivery, not only when the webhook was created: the client's resolver looks the name
//! up once per connection and hands the connector only the addresses [`target::forbidden`] lets through, so the
//! connection goes to an address that was checked (no second lookup a DNS server could answer differently). An
//! address host is checked here, since no resolver sees it. Proxies from the environment are ignored (a proxy
//! would resolve the name itself) and redirects are not followed (a 3xx could point anywhere).
//!
//! TLS: reqwest's `rustls-tls-manual-roots`, handed a rustls configuration of our own on ring (the provider the
//! database and Redis connections already build) with the system's roots (read as `database::tls` reads them,
//! through rustls-native-certs). Its ring variant rather than `-no-provider`: features unify across the
//! workspace, and every other reqwest client (tests, loadtest) would otherwise panic at build for want of a
//! process-wide provider; ring and rustls are built already, so the only new crate is hyper-rustls.

use std::{error::Error as _, net::SocketAddr, sync::Arc, time::Duration};

use actix_web::web::Bytes;
use anyhow::Context as _;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use tokio::sync::Semaphore;

use crate::webhooks::{
    signature,
    target::{self, TargetError},
};

/// The `User-Agent` of every delivery.
pub const USER_AGENT: &str = "snowlink-webhooks/1";

/// The header carrying the event's ID, on which receivers dedupe (delivery is at-least-once).
pub const EVENT_ID_HEADER: &str = "Snowlink-Event-Id";

/// How much of a receiver's answer is read: enough for a short error text to end, so the connection can be
/// reused; a receiver answering more only loses its connection.
const MAX_RESPONSE_BYTES: usize = 4 * 1024;

/// Name lookups deliveries may have running at once (each holds a blocking thread until the resolver answers).
const DELIVERY_LOOKUPS: usize = 16;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The receiver answered, with a status other than 2xx (a 3xx included: redirects are not followed).
    #[error("the receiver answered {0}")]
    Status(u16),
    /// The URL's host is, or resolves only to, an address webhooks may not reach; nothing was sent.
    #[error("the webhook's URL reaches no address webhooks may reach")]
    Forbidden,
    /// No answer: the name did not resolve, the connection failed, or the timeout passed.
    #[error("delivery failed: {0}")]
    Transport(String),
}

/// Sends deliveries: one per process, its connections pooled per receiver.
#[derive(Debug, Clone)]
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    /// A sender whose deliveries each take at most `timeout` (connecting, sending, and the answer's head and
    /// first bytes), reaching private addresses only if `allow_private`.
    ///
    /// # Errors
    /// When the HTTP client or its TLS configuration cannot be built.
    pub fn new(allow_private: bool, timeout: Duration) -> anyhow::Result<Self> {
        let resolver = CheckedResolver {
            allow_private,
            lookups: Arc::new(Semaphore::new(DELIVERY_LOOKUPS)),
        };
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls()?)
            .dns_resolver(Arc::new(resolver))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .context("building the webhook client")?;
        Ok(Self {
            client,
            allow_private,
        })
    }

    /// Whether it reaches private addresses (`--allow-private-webhooks`); the API checks new URLs the same way.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// POSTs `body` (JSON) to `url`, signed with `secret` at the current time and carrying `event_id`.
    ///
    /// # Errors
    /// [`SendError::Status`] for an answer that is not 2xx, [`SendError::Forbidden`] for a URL that may not be
    /// reached (nothing sent), [`SendError::Transport`] for no answer in time.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        event_id: &str,
        body: Bytes,
    ) -> Result<(), SendError> {
        let url = target::parse(url).map_err(|_| SendError::Forbidden)?;
        if let Some(ip) = target::address_host(&url) {
            target::allowed(ip, self.allow_private).map_err(|_| SendError::Forbidden)?;
        }
        let signed = signature::sign(secret, chrono::Utc::now().timestamp(), &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, event_id)
            .header(signature::HEADER, signed)
            .body(body)
            .send()
            .await
            .map_err(failure)?;
        let status = response.status();
        read_some(response).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status.as_u16()))
        }
    }
}

/// Reads up to [`MAX_RESPONSE_BYTES`] of the answer; what it says is not used, and a failure to read it does
/// not change the outcome the status gave.
async fn read_some(mut response: reqwest::Response) {
    let mut read = 0;
    while read < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => read += chunk.len(),
            Ok(None) | Err(_) => return,
        }
    }
}

/// A client error as a [`SendError`]: the resolver's refusal is [`SendError::Forbidden`], found among the
/// error's causes (reqwest and hyper wrap it).
fn failure(error: reqwest::Error) -> SendError {
    let mut cause = error.source();
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<TargetError>() {
            if matches!(refused, TargetError::ResolvesToForbidden { .. }) {
                return SendError::Forbidden;
            }
        }
        cause = current.source();
    }
    let mut text = error.to_string();
    if let Some(source) = error.source() {
        text = format!("{text}: {source}");
    }
    SendError::Transport(text)
}

/// rustls on ring with the system's roots. A system with none still starts (http webhooks work); its https
/// deliveries fail, which the warning says.
fn tls() -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let system = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(system.certs);
    if added == 0 {
        tracing::warn!(
            "no CA certificates in the system store: https webhooks will fail to connect"
        );
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("the webhook client's TLS versions")?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The delivery client's resolver: each name looked up once per connection, and only the addresses webhooks
/// may reach handed to the connector.
struct CheckedResolver {
    allow_private: bool,
    lookups: Arc<Semaphore>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (allow_private, lookups) = (self.allow_private, Arc::clone(&self.lookups));
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let permit = tokio::time::timeout(target::RESOLVE_TIMEOUT, lookups.acquire_owned())
                .await
                .ok()
                .and_then(Result::ok)
                .ok_or_else(|| TargetError::DoesNotResolve(name.clone()))?;
            // The port is the connector's to set; 0 here.
            let addresses = target::resolve(&name, 0, permit).await?;
            let (checked, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addresses
                .into_iter()
                .partition(|address| allow_private || !target::forbidden(address.ip()));
            match refused.first() {
                Some(refused) if checked.is_empty() => Err(TargetError::ResolvesToForbidden {
                    host: name,
                    address: refused.ip(),
                }
                .into()),
                _ => Ok(Box::new(checked.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests;
