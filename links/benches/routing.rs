//! What rules and variants cost a redirect per visit: `choose` on a link with 5 rules (none holding, so every
//! condition is tried) and 2 variants, and the readers that feed it (`Os::of`, `primary_language`,
//! `visitor_key`) on real headers; and reading the stored form, which a Redis hit pays. Criterion reports time
//! per call.

use std::hint::black_box;

use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use links::routing::{
    parse_rules, parse_variants, primary_language, visitor_key, DeviceClass, Os, Routing, Visitor,
};
use serde_json::json;

const IPHONE: &[u8] =
    b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 \
    (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const WINDOWS: &[u8] =
    b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
    Chrome/125.0.0.0 Safari/537.36 Edg/125.0.2535.67";

/// Five rules a marketer might write, none of which holds for [`visitor`], and a 70/30 split.
fn routing() -> Routing {
    let trusted = |url: &str| Ok(url.to_owned());
    let rules = json!([
        {"when": {"os": "ios"}, "long_url": "https://apps.apple.com/app/id1"},
        {"when": {"os": "android", "device": "mobile"}, "long_url": "https://play.google.com/store/apps"},
        {"when": {"language": "de"}, "long_url": "https://example.com/de"},
        {"when": {"country": "FR", "before": "2099-01-01T00:00:00Z"}, "long_url": "https://example.com/fr"},
        {"when": {"query": {"utm_source": "newsletter"}}, "long_url": "https://example.com/news"}
    ]);
    let variants = json!([
        {"long_url": "https://a.example.com/landing", "weight": 70},
        {"long_url": "https://b.example.com/landing", "weight": 30}
    ]);
    Routing {
        rules: parse_rules(&rules, &trusted).expect("valid rules"),
        variants: parse_variants(&variants, &trusted).expect("valid variants"),
    }
}

/// A desktop Windows visitor from the US who prefers English and came from a campaign.
fn visitor() -> Visitor<'static> {
    Visitor {
        device: DeviceClass::Desktop,
        os: Os::of(WINDOWS),
        language: primary_language(b"en-US,en;q=0.9,de;q=0.8"),
        country: Some(*b"US"),
        now: Utc::now(),
        query: "utm_source=twitter&utm_medium=social&utm_campaign=launch",
        key: visitor_key(b"203.0.113.9 Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
    }
}

fn choose(c: &mut Criterion) {
    let routing = routing();
    let visitor = visitor();
    c.bench_function("choose, 5 rules (none hold) and 2 variants", |b| {
        b.iter(|| black_box(&routing).choose(black_box(42), black_box(&visitor)))
    });
    let plain = Routing::default();
    c.bench_function("choose, no rules or variants", |b| {
        b.iter(|| black_box(&plain).choose(black_box(42), black_box(&visitor)))
    });
}

fn readers(c: &mut Criterion) {
    c.bench_function("Os::of, iPhone Safari", |b| {
        b.iter(|| Os::of(black_box(IPHONE)))
    });
    c.bench_function("Os::of, Windows Edge", |b| {
        b.iter(|| Os::of(black_box(WINDOWS)))
    });
    c.bench_function("primary_language, de-DE,de;q=0.9,en;q=0.8", |b| {
        b.iter(|| primary_language(black_box(b"de-DE,de;q=0.9,en;q=0.8")))
    });
    let id = [b"203.0.113.9 ".as_slice(), WINDOWS].concat();
    c.bench_function("visitor_key, IP and User-Agent", |b| {
        b.iter(|| visitor_key(black_box(&id)))
    });
}

fn stored(c: &mut Criterion) {
    let stored = routing().to_stored();
    c.bench_function("from_stored, 5 rules and 2 variants", |b| {
        b.iter(|| Routing::from_stored(black_box(&stored)))
    });
}

criterion_group!(benches, choose, readers, stored);
criterion_main!(benches);
