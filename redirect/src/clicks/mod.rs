//! Click events, for links whose owner has a click webhook or a live stream open (the [`watchers`]): built on
//! the request's thread from what the redirect already read, handed to a bounded buffer, and appended to the
//! durable queue in batches by the [`flusher`] (as soon as the last append returns, so at least every second
//! while Redis answers). A full buffer or a queue that stays down drops events, counted. A link whose owner takes
//! no events costs the request one check of its owner against the worker's copy of the watchers.

pub mod flusher;
pub mod watchers;

use actix_web::{
    http::header::{self, HeaderValue},
    HttpRequest, HttpResponse,
};
use chrono::{DateTime, Utc};
use events::{Click, Event};
use prometheus::{IntCounter, IntCounterVec, Opts, Registry};
use tokio::sync::mpsc;

use crate::hits::visit::{Device, Visit, UNKNOWN_COUNTRY};

/// Click events held for the flusher, at most: about 400 bytes each, so at most ~20 MiB.
pub const BUFFER: usize = 50_000;

/// What became of click events.
#[derive(Clone)]
pub struct ClickMetrics {
    /// Taken into the buffer.
    pub taken: IntCounter,
    /// Appended to the queue.
    pub queued: IntCounter,
    /// Dropped: the buffer was full.
    pub dropped_full: IntCounter,
    /// Dropped: the queue did not take them in time.
    pub dropped_queue_down: IntCounter,
}

impl ClickMetrics {
    /// Registers the series.
    ///
    /// # Errors
    /// When they are registered already.
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        let events = IntCounterVec::new(
            Opts::new(
                "redirect_click_events_total",
                "Click events, by outcome (taken, queued, dropped_buffer_full, dropped_queue_down)",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(events.clone()))?;
        Ok(Self {
            taken: events.with_label_values(&["taken"]),
            queued: events.with_label_values(&["queued"]),
            dropped_full: events.with_label_values(&["dropped_buffer_full"]),
            dropped_queue_down: events.with_label_values(&["dropped_queue_down"]),
        })
    }
}

/// Where the request threads put click events.
pub struct Clicks {
    buffer: mpsc::Sender<Event>,
    metrics: ClickMetrics,
}

impl Clicks {
    /// The buffer's sending side, and its receiving side for [`flusher::run`].
    pub fn new(metrics: ClickMetrics) -> (Self, mpsc::Receiver<Event>) {
        let (buffer, taken) = mpsc::channel(BUFFER);
        (Self { buffer, metrics }, taken)
    }

    /// Takes the click that `response` answers to `req` for the link `key` of `owner`.
    pub fn take(
        &self,
        req: &HttpRequest,
        response: &HttpResponse,
        visit: &Visit<'_>,
        link: Link<'_>,
        owner: i64,
        at: DateTime<Utc>,
    ) {
        let long_url = response
            .headers()
            .get(header::LOCATION)
            .and_then(|location| location.to_str().ok())
            .unwrap_or_default();
        let referrer = String::from_utf8_lossy(visit.referrer).to_ascii_lowercase();
        let country = visit
            .country
            .filter(|country| *country != UNKNOWN_COUNTRY)
            .map(|country| String::from_utf8_lossy(&country).into_owned());
        let agent = req
            .headers()
            .get(header::USER_AGENT)
            .map_or(&[][..], HeaderValue::as_bytes);
        let click = Click {
            code: link.code,
            domain: link.domain,
            long_url,
            at,
            referrer_domain: (!referrer.is_empty()).then_some(referrer.as_str()),
            device: visit.device.name(),
            os: links::routing::Os::of(agent).name(),
            country: country.as_deref(),
            bot: visit.device == Device::Bot,
            variant: visit.variant,
        };
        match self
            .buffer
            .try_send(click.event(owner, link.key.to_owned()))
        {
            Ok(()) => self.metrics.taken.inc(),
            Err(_) => self.metrics.dropped_full.inc(),
        }
    }
}

/// The link a click is on.
#[derive(Debug, Clone, Copy)]
pub struct Link<'a> {
    /// Its key (`host/code` off the default domain).
    pub key: &'a str,
    /// Its code.
    pub code: &'a str,
    /// The host it is on.
    pub domain: &'a str,
}
