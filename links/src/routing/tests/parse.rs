//! Reading the API's rules and variants: what is kept, and each refusal's index, field and message.

use serde_json::{json, Value};

use super::super::{parse_rules, parse_variants, DeviceClass, Invalid, Lang, Os};

/// The shortener's URL check, as far as these tests need one: `https://` only, `blocked` refused.
fn check_url(url: &str) -> Result<String, String> {
    if url.contains("blocked") {
        Err("the domain is blocked".to_owned())
    } else if url.starts_with("https://") {
        Ok(url.to_ascii_lowercase())
    } else {
        Err("must be an absolute http(s) URL".to_owned())
    }
}

fn rules(value: Value) -> Result<Vec<super::super::Rule>, Invalid> {
    parse_rules(&value, &check_url)
}

fn variants(value: Value) -> Result<Vec<super::super::Variant>, Invalid> {
    parse_variants(&value, &check_url)
}

/// The message of a refusal, with its code, index and field checked.
fn refused<T: std::fmt::Debug>(
    read: Result<T, Invalid>,
    code: &str,
    index: Option<usize>,
) -> String {
    let invalid = read.expect_err("refused");
    assert_eq!((invalid.code, invalid.index), (code, index), "{invalid:?}");
    assert!(
        invalid.message.starts_with(&format!("{}: ", invalid.field)),
        "{invalid:?}"
    );
    invalid.message
}

fn refused_rules(value: Value, index: Option<usize>) -> String {
    refused(rules(value), "invalid_rules", index)
}

fn refused_variants(value: Value, index: Option<usize>) -> String {
    refused(variants(value), "invalid_variants", index)
}

fn with_when(when: Value) -> Value {
    json!([{"when": {"os": "ios"}, "long_url": "https://a.example"}, {"when": when, "long_url": "https://b.example"}])
}

#[test]
fn a_rule_with_every_condition_is_read_normalised() {
    let read = rules(json!([{
        "when": {
            "device": "mobile", "os": "android", "language": "DE", "country": "de",
            "after": "2026-12-24T18:00:00+01:00", "before": "2026-12-31T00:00:00Z",
            "query": {"utm_source": "news"}
        },
        "long_url": "https://Example.com/De"
    }]))
    .expect("valid");
    let when = &read[0].when;
    assert_eq!(when.device, Some(DeviceClass::Mobile));
    assert_eq!(when.os, Some(Os::Android));
    assert_eq!(when.language, Lang::new(b"de"));
    assert_eq!(when.country, Some(*b"DE"));
    assert_eq!(
        when.after.map(|after| after.to_rfc3339()),
        Some("2026-12-24T17:00:00+00:00".to_owned())
    );
    assert_eq!(
        when.query,
        vec![("utm_source".to_owned(), "news".to_owned())]
    );
    assert_eq!(read[0].long_url, "https://example.com/de");
}

#[test]
fn null_is_no_rules_and_no_variants() {
    assert_eq!(rules(Value::Null), Ok(Vec::new()));
    assert_eq!(variants(Value::Null), Ok(Vec::new()));
    assert_eq!(rules(json!([])), Ok(Vec::new()));
}

#[test]
fn a_condition_out_of_its_set_names_the_index_and_the_field() {
    let message = refused_rules(with_when(json!({"device": "bot"})), Some(1));
    assert_eq!(
        message,
        "rules[1].when.device: must be one of desktop, mobile, tablet"
    );
    let message = refused_rules(with_when(json!({"os": "beos"})), Some(1));
    assert_eq!(
        message,
        "rules[1].when.os: must be one of ios, android, windows, macos, linux"
    );
    assert!(refused_rules(with_when(json!({"device": 1})), Some(1))
        .starts_with("rules[1].when.device: "));
}

#[test]
fn languages_countries_and_times_must_have_their_form() {
    for language in ["d", "deut", "de-DE", "d1"] {
        let message = refused_rules(with_when(json!({"language": language})), Some(1));
        assert!(message.starts_with("rules[1].when.language: "), "{message}");
    }
    for country in ["D", "DEU", "D1"] {
        assert!(
            refused_rules(with_when(json!({"country": country})), Some(1))
                .starts_with("rules[1].when.country: ")
        );
    }
    let message = refused_rules(with_when(json!({"after": "tomorrow"})), Some(1));
    assert!(message.starts_with("rules[1].when.after: "), "{message}");
}

#[test]
fn after_must_come_before_before() {
    let same = json!({"after": "2026-12-24T00:00:00Z", "before": "2026-12-24T00:00:00Z"});
    assert_eq!(
        refused_rules(with_when(same), Some(1)),
        "rules[1].when.before: must be later than after"
    );
}

#[test]
fn a_query_condition_is_bounded() {
    let six: serde_json::Map<String, Value> =
        (0..6).map(|n| (format!("k{n}"), json!("v"))).collect();
    assert!(refused_rules(with_when(json!({"query": six})), Some(1))
        .starts_with("rules[1].when.query: "));
    assert!(refused_rules(with_when(json!({"query": {}})), Some(1))
        .starts_with("rules[1].when.query: "));
    let long = "n".repeat(101);
    assert!(
        refused_rules(with_when(json!({"query": {long: "v"}})), Some(1))
            .starts_with("rules[1].when.query: ")
    );
    let message = refused_rules(with_when(json!({"query": {"n": "v".repeat(101)}})), Some(1));
    assert!(message.starts_with("rules[1].when.query.n: "), "{message}");
    assert!(
        refused_rules(with_when(json!({"query": {"n": 1}})), Some(1))
            .starts_with("rules[1].when.query.n: ")
    );
}

#[test]
fn unknown_keys_empty_whens_and_missing_fields_are_refused() {
    assert_eq!(
        refused_rules(with_when(json!({})), Some(1)),
        "rules[1].when: must have at least one condition"
    );
    let message = refused_rules(with_when(json!({"city": "Berlin"})), Some(1));
    assert!(
        message.starts_with("rules[1].when.city: is not a field"),
        "{message}"
    );
    let extra = json!([{"when": {"os": "ios"}, "long_url": "https://a.example", "weight": 1}]);
    assert!(refused_rules(extra, Some(0)).starts_with("rules[0].weight: "));
    let no_url = json!([{"when": {"os": "ios"}}]);
    assert_eq!(
        refused_rules(no_url, Some(0)),
        "rules[0].long_url: is required"
    );
    assert_eq!(
        refused_rules(json!([{"long_url": "https://a.example"}]), Some(0)),
        "rules[0].when: is required"
    );
    assert!(refused_rules(json!(["https://a.example"]), Some(0)).starts_with("rules[0]: "));
    assert!(refused_rules(json!({"when": {}}), None).starts_with("rules: "));
}

#[test]
fn a_bad_long_url_passes_the_checks_reason_through() {
    let blocked = json!([{"when": {"os": "ios"}, "long_url": "https://blocked.example"}]);
    assert_eq!(
        refused_rules(blocked, Some(0)),
        "rules[0].long_url: the domain is blocked"
    );
    let message = refused_variants(
        json!([{"long_url": "https://a.example", "weight": 1}, {"long_url": 5, "weight": 1}]),
        Some(1),
    );
    assert_eq!(message, "variants[1].long_url: must be a string");
}

#[test]
fn at_most_twenty_rules() {
    let rule = json!({"when": {"os": "ios"}, "long_url": "https://a.example"});
    assert_eq!(
        rules(Value::Array(vec![rule.clone(); 20])).map(|rules| rules.len()),
        Ok(20)
    );
    assert_eq!(
        refused_rules(Value::Array(vec![rule; 21]), None),
        "rules: must have 0 to 20 items"
    );
}

#[test]
fn variants_number_two_to_ten_with_integer_weights_from_1_to_1000() {
    let variant = |weight: Value| json!({"long_url": "https://a.example", "weight": weight});
    let read = variants(json!([variant(json!(1)), variant(json!(1000))])).expect("valid");
    assert_eq!(
        read.iter()
            .map(|variant| variant.weight)
            .collect::<Vec<_>>(),
        [1, 1000]
    );
    assert_eq!(
        refused_variants(json!([variant(json!(1))]), None),
        "variants: must have 2 to 10 items"
    );
    assert!(
        refused_variants(Value::Array(vec![variant(json!(1)); 11]), None).starts_with("variants: ")
    );
    assert!(refused_variants(json!([]), None).starts_with("variants: "));
    for weight in [json!(0), json!(1001), json!(1.5), json!("5"), json!(-1)] {
        let message = refused_variants(json!([variant(json!(1)), variant(weight)]), Some(1));
        assert_eq!(
            message,
            "variants[1].weight: must be an integer from 1 to 1000"
        );
    }
    let missing = json!([variant(json!(1)), {"long_url": "https://b.example"}]);
    assert_eq!(
        refused_variants(missing, Some(1)),
        "variants[1].weight: is required"
    );
}
