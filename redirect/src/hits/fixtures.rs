//! What the hits tests share: visits, a fixed noon, days, the counts a counter held, and source rows in order.

use chrono::{DateTime, NaiveDate, Utc};
use links::hits::SourceRows;

use super::{
    counter::HitCounter,
    pending::Pending,
    visit::{Device, Visit},
};

pub(super) fn visit(
    device: Device,
    referrer: &'static str,
    country: Option<[u8; 2]>,
) -> Visit<'static> {
    Visit {
        device,
        referrer: referrer.as_bytes(),
        country,
        variant: None,
    }
}

pub(super) fn noon() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
        .expect("time")
        .with_timezone(&Utc)
}

pub(super) fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

pub(super) fn drained(counter: &HitCounter) -> Pending {
    let mut pending = Pending::new(100_000);
    counter.drain_into(&mut pending);
    pending
}

pub(super) fn sorted_sources(rows: &SourceRows) -> Vec<(i64, NaiveDate, i16, String, i64)> {
    let mut all: Vec<_> = (0..rows.link_ids.len())
        .map(|i| {
            (
                rows.link_ids[i],
                rows.days[i],
                rows.kinds[i],
                rows.keys[i].clone(),
                rows.hits[i],
            )
        })
        .collect();
    all.sort();
    all
}
