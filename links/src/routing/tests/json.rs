//! Writing a routing back out: the API's JSON, and the stored form read back whole (or not at all).

use proptest::prelude::*;
use serde_json::{json, Value};

use super::super::{parse_rules, parse_variants, Routing};

fn trusted(url: &str) -> Result<String, String> {
    Ok(url.to_owned())
}

fn full() -> (Value, Value) {
    let rules = json!([
        {"when": {"device": "mobile", "os": "ios", "language": "de", "country": "DE",
                  "after": "2026-12-24T18:00:00Z", "before": "2026-12-31T00:00:00.250Z",
                  "query": {"utm_source": "news", "v": ""}},
         "long_url": "https://apps.apple.com/de/app"},
        {"when": {"os": "android"}, "long_url": "https://play.google.com/store"}
    ]);
    let variants = json!([
        {"long_url": "https://a.example/landing", "weight": 70},
        {"long_url": "https://b.example/landing", "weight": 30}
    ]);
    (rules, variants)
}

fn full_routing() -> Routing {
    let (rules, variants) = full();
    Routing {
        rules: parse_rules(&rules, &trusted).expect("valid"),
        variants: parse_variants(&variants, &trusted).expect("valid"),
    }
}

#[test]
fn the_api_json_reads_back_as_it_was_sent() {
    let (rules, variants) = full();
    let routing = full_routing();
    assert_eq!(routing.rules_json(), rules);
    assert_eq!(routing.variants_json(), variants);
}

#[test]
fn the_stored_form_reads_back_whole() {
    let routing = full_routing();
    assert_eq!(
        Routing::from_stored(&routing.to_stored()),
        Some(routing.clone())
    );
    let rules_only = Routing {
        variants: Vec::new(),
        ..routing.clone()
    };
    assert_eq!(
        Routing::from_stored(&rules_only.to_stored()),
        Some(rules_only)
    );
    let variants_only = Routing {
        rules: Vec::new(),
        ..routing
    };
    assert_eq!(
        Routing::from_stored(&variants_only.to_stored()),
        Some(variants_only)
    );
}

#[test]
fn an_empty_routing_is_stored_as_an_empty_object() {
    assert_eq!(Routing::default().to_stored(), "{}");
    assert_eq!(Routing::from_stored("{}"), Some(Routing::default()));
}

#[test]
fn junk_is_no_routing() {
    let stored = full_routing().to_stored();
    for junk in [
        "",
        "null",
        "[]",
        "5",
        "{\"rules\":5}",
        "{\"variants\":[{}]}",
        &stored[..stored.len() - 1],
    ] {
        assert_eq!(Routing::from_stored(junk), None, "{junk}");
    }
}

proptest! {
    #[test]
    fn reading_any_text_never_panics(text in ".{0,200}") {
        let _ = Routing::from_stored(&text);
    }

    #[test]
    fn cutting_a_stored_form_anywhere_never_panics(cut in 0_usize..600) {
        let stored = full_routing().to_stored();
        let cut = cut.min(stored.len());
        if stored.is_char_boundary(cut) {
            let _ = Routing::from_stored(&stored[..cut]);
        }
    }
}
