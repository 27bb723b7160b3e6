//! Stopping without dropping a request: the one convention every service follows on SIGTERM or SIGINT.
//!
//! 1. The stop signal arrives. `/readyz` answers 503 with `{"status": "draining"}` at once, so that Kubernetes
//!    (and any load balancer that follows readiness) stops sending new requests here, while the API keeps
//!    serving for the drain delay (`--drain-delay-ms`, `DRAIN_DELAY_MS`, default 5 s): the time they take to
//!    notice. Meanwhile every answer carries `Connection: close`, so that keep-alive clients reconnect to a
//!    replica that is staying instead of sending their next request down a connection about to close.
//! 2. The API stops accepting and the requests in flight finish (bounded by the API's shutdown timeout).
//! 3. The background tasks' own token (their supervisor's) triggers: they flush what they hold and stop, joined
//!    in the order of the service's [`crate::tasks::StopSequence`] (the redirect's last hit write, the
//!    shortener's queued inserts and its lease release, idgen's lease release).
//! 4. The admin server stops last, so probes and scrapes answer until the end.
//!
//! A Kubernetes pod's `terminationGracePeriodSeconds` must therefore cover the drain delay, the API's drain and
//! the longest stopping step (see the chart's values).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use actix_web::{
    dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform},
    http::ConnectionType,
};
use futures_util::future::{Either, LocalBoxFuture};

/// Default of `--drain-delay-ms`: a few readiness periods and an endpoint update, with room to spare.
const DEFAULT_DRAIN_DELAY_MS: u64 = 5_000;

/// The drain delay flag, the same on every service.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct DrainArgs {
    /// How long the API keeps serving after SIGTERM or SIGINT, in milliseconds, while /readyz answers 503
    /// (draining) so that load balancers and Kubernetes stop sending requests here. Then the API stops accepting,
    /// finishes the requests in flight, and background tasks flush and stop.
    #[arg(long, env = "DRAIN_DELAY_MS", default_value_t = DEFAULT_DRAIN_DELAY_MS)]
    pub drain_delay_ms: u64,
}

impl Default for DrainArgs {
    fn default() -> Self {
        Self {
            drain_delay_ms: DEFAULT_DRAIN_DELAY_MS,
        }
    }
}

impl DrainArgs {
    /// No delay: tests that start and stop services by the dozen, where nothing routes by readiness.
    pub fn immediate() -> Self {
        Self { drain_delay_ms: 0 }
    }

    /// The drain delay.
    pub fn delay(&self) -> Duration {
        Duration::from_millis(self.drain_delay_ms)
    }
}

/// Whether the service is draining; shared by `/readyz`, the API's answers and the run that sets it.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the service as draining; idempotent.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the service is draining.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Middleware for the API: while draining, each answer closes its connection.
    pub fn close_connections(&self) -> CloseWhenDraining {
        CloseWhenDraining(self.clone())
    }
}

/// See [`Draining::close_connections`].
pub struct CloseWhenDraining(Draining);

impl<S, B> Transform<S, ServiceRequest> for CloseWhenDraining
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = CloseWhenDrainingService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(CloseWhenDrainingService {
            service,
            draining: self.0.clone(),
        }))
    }
}

/// The service [`CloseWhenDraining`] wraps around the API.
pub struct CloseWhenDrainingService<S> {
    service: S,
    draining: Draining,
}

impl<S, B> Service<ServiceRequest> for CloseWhenDrainingService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    // The inner future as it is while serving: the redirect's hot path pays one atomic load, no allocation.
    type Future =
        Either<S::Future, LocalBoxFuture<'static, Result<ServiceResponse<B>, actix_web::Error>>>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let answer = self.service.call(request);
        if !self.draining.is_draining() {
            return Either::Left(answer);
        }
        Either::Right(Box::pin(async move {
            let mut answer = answer.await?;
            answer
                .response_mut()
                .head_mut()
                .set_connection_type(ConnectionType::Close);
            Ok(answer)
        }))
    }
}
