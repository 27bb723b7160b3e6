//! `loadtest webhook-receiver`: an HTTP server that takes webhook deliveries as fast as a sender can make them,
//! checks their signatures, and measures how long each click event took from its visit to here.
//!
//! `POST` any path: a delivery, answered with the configured status (401 for a bad signature, 400 for a body
//! without `id` or `data.at`). `GET` any path: the summary so far as JSON, so a script can wait until every
//! event has arrived.

pub mod signature;
pub mod tally;

use std::{
    borrow::Cow,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use actix_web::{
    dev::{Server, ServerHandle},
    http::StatusCode,
    web, App, HttpRequest, HttpResponse, HttpServer,
};
use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use tally::{Summary, Tally};

/// How a receiver answers.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to serve on (port 0: any free port, see [`Receiver::address`]).
    pub listen: String,
    /// The webhook's secret: signatures are checked when given.
    pub secret: Option<String>,
    /// The status every good delivery gets.
    pub status: StatusCode,
    /// HTTP worker threads.
    pub workers: usize,
}

/// A bound receiver, not yet serving.
pub struct Receiver {
    server: Server,
    address: SocketAddr,
    tally: Arc<Mutex<Tally>>,
}

/// What the request handlers share.
struct Shared {
    settings: Settings,
    /// One lock for every count: held for a hash-set probe and a histogram record, far less than a request costs.
    tally: Arc<Mutex<Tally>>,
}

/// The part of a delivery the receiver reads.
#[derive(Deserialize)]
struct Delivery<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    data: Visit<'a>,
}

#[derive(Deserialize)]
struct Visit<'a> {
    #[serde(borrow)]
    at: Cow<'a, str>,
}

impl Receiver {
    /// Binds the address.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub fn bind(settings: Settings) -> std::io::Result<Self> {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let shared = web::Data::new(Shared {
            settings: settings.clone(),
            tally: Arc::clone(&tally),
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(answer))
        })
        .workers(settings.workers.max(1))
        // A sender's idle keep-alive connections would otherwise hold the summary back for 30 s.
        .shutdown_timeout(1)
        .bind(&settings.listen)?;
        let address = server
            .addrs()
            .first()
            .copied()
            .ok_or_else(|| std::io::Error::other("no address bound"))?;
        Ok(Self {
            server: server.run(),
            address,
            tally,
        })
    }

    /// The address it serves on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A handle that stops it (the summary is then returned by [`Receiver::run`]).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM, a stop through [`Receiver::handle`], or `duration`; then the summary.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run(self, duration: Option<Duration>) -> std::io::Result<Summary> {
        if let Some(duration) = duration {
            let handle = self.server.handle();
            actix_web::rt::spawn(async move {
                actix_web::rt::time::sleep(duration).await;
                handle.stop(true).await;
            });
        }
        self.server.await?;
        Ok(lock(&self.tally).summary())
    }
}

async fn answer(request: HttpRequest, body: web::Bytes, shared: web::Data<Shared>) -> HttpResponse {
    if request.method() != actix_web::http::Method::POST {
        return HttpResponse::Ok().json(lock(&shared.tally).summary());
    }
    let now = Utc::now();
    if let Some(secret) = &shared.settings.secret {
        let header = request
            .headers()
            .get(signature::HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !signature::verify(secret, header, &body, now.timestamp()) {
            lock(&shared.tally).bad_signature();
            return HttpResponse::Unauthorized().finish();
        }
    }
    let Some((id, visited)) = read(&body) else {
        lock(&shared.tally).malformed();
        return HttpResponse::BadRequest().finish();
    };
    lock(&shared.tally).event(&id, visited, now);
    HttpResponse::build(shared.settings.status).finish()
}

/// The event id and visit time of a delivery's body.
fn read(body: &[u8]) -> Option<(Cow<'_, str>, DateTime<Utc>)> {
    let delivery: Delivery<'_> = serde_json::from_slice(body).ok()?;
    let visited = DateTime::parse_from_rfc3339(&delivery.data.at).ok()?;
    Some((delivery.id, visited.to_utc()))
}

/// The tally, even after a handler panicked holding it (the counts are still the best there is).
fn lock(tally: &Mutex<Tally>) -> std::sync::MutexGuard<'_, Tally> {
    tally.lock().unwrap_or_else(PoisonError::into_inner)
}
