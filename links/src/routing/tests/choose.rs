//! `choose`: each condition alone and together, first match wins, and the variant split.

use chrono::{DateTime, TimeZone, Utc};

use super::super::{
    visitor_key, Choice, DeviceClass, Lang, Os, Routing, Rule, Variant, Visitor, When,
};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + seconds, 0)
        .single()
        .unwrap_or_default()
}

/// A desktop Linux visitor with no language, country or query, at `at(0)`.
fn plain() -> Visitor<'static> {
    Visitor {
        device: DeviceClass::Desktop,
        os: Os::Linux,
        language: None,
        country: None,
        now: at(0),
        query: "",
        key: 7,
    }
}

fn rule(when: When, long_url: &str) -> Rule {
    Rule {
        when,
        long_url: long_url.to_owned(),
    }
}

fn routing(rules: Vec<Rule>, weights: &[u16]) -> Routing {
    let variants = weights
        .iter()
        .enumerate()
        .map(|(index, &weight)| Variant {
            long_url: format!("https://v{index}.example"),
            weight,
        })
        .collect();
    Routing { rules, variants }
}

fn one_rule(when: When) -> Routing {
    routing(vec![rule(when, "https://rule.example")], &[])
}

fn lang(subtag: &str) -> Option<Lang> {
    Lang::new(subtag.as_bytes())
}

#[test]
fn a_device_condition_holds_for_that_device_only_and_never_for_a_bot() {
    let routing = one_rule(When {
        device: Some(DeviceClass::Mobile),
        ..When::default()
    });
    let mobile = Visitor {
        device: DeviceClass::Mobile,
        ..plain()
    };
    assert_eq!(routing.choose(1, &mobile), Choice::Rule(0));
    assert_eq!(routing.choose(1, &plain()), Choice::Default);
    let bot_rule = one_rule(When {
        device: Some(DeviceClass::Bot),
        ..When::default()
    });
    let bot = Visitor {
        device: DeviceClass::Bot,
        ..plain()
    };
    assert_eq!(bot_rule.choose(1, &bot), Choice::Default);
}

#[test]
fn an_os_condition_holds_for_that_os_only() {
    let routing = one_rule(When {
        os: Some(Os::Ios),
        ..When::default()
    });
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                os: Os::Ios,
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(routing.choose(1, &plain()), Choice::Default);
    let other = one_rule(When {
        os: Some(Os::Other),
        ..When::default()
    });
    assert_eq!(
        other.choose(
            1,
            &Visitor {
                os: Os::Other,
                ..plain()
            }
        ),
        Choice::Default
    );
}

#[test]
fn a_language_condition_holds_for_that_language_only() {
    let routing = one_rule(When {
        language: lang("de"),
        ..When::default()
    });
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                language: lang("DE"),
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                language: lang("deu"),
                ..plain()
            }
        ),
        Choice::Default
    );
    assert_eq!(routing.choose(1, &plain()), Choice::Default);
}

#[test]
fn a_country_condition_holds_for_that_country_in_either_case() {
    let routing = one_rule(When {
        country: Some(*b"DE"),
        ..When::default()
    });
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                country: Some(*b"DE"),
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                country: Some(*b"de"),
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                country: Some(*b"AT"),
                ..plain()
            }
        ),
        Choice::Default
    );
    assert_eq!(routing.choose(1, &plain()), Choice::Default);
}

#[test]
fn after_holds_from_its_time_and_before_until_its_time() {
    let after = one_rule(When {
        after: Some(at(0)),
        ..When::default()
    });
    assert_eq!(
        after.choose(
            1,
            &Visitor {
                now: at(-1),
                ..plain()
            }
        ),
        Choice::Default
    );
    assert_eq!(
        after.choose(
            1,
            &Visitor {
                now: at(0),
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    let before = one_rule(When {
        before: Some(at(0)),
        ..When::default()
    });
    assert_eq!(
        before.choose(
            1,
            &Visitor {
                now: at(-1),
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(
        before.choose(
            1,
            &Visitor {
                now: at(0),
                ..plain()
            }
        ),
        Choice::Default
    );
}

#[test]
fn a_query_condition_needs_every_pair() {
    let pairs = vec![
        ("utm_source".to_owned(), "news".to_owned()),
        ("v".to_owned(), "2".to_owned()),
    ];
    let routing = one_rule(When {
        query: pairs,
        ..When::default()
    });
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                query: "v=2&utm_source=news",
                ..plain()
            }
        ),
        Choice::Rule(0)
    );
    assert_eq!(
        routing.choose(
            1,
            &Visitor {
                query: "utm_source=news",
                ..plain()
            }
        ),
        Choice::Default
    );
}

#[test]
fn every_condition_of_a_rule_must_hold() {
    let when = When {
        device: Some(DeviceClass::Mobile),
        os: Some(Os::Android),
        language: lang("de"),
        country: Some(*b"DE"),
        after: Some(at(-10)),
        before: Some(at(10)),
        query: vec![("a".to_owned(), "1".to_owned())],
    };
    let routing = one_rule(when);
    let all = Visitor {
        device: DeviceClass::Mobile,
        os: Os::Android,
        language: lang("de"),
        country: Some(*b"DE"),
        query: "a=1",
        ..plain()
    };
    assert_eq!(routing.choose(1, &all), Choice::Rule(0));
    let misses = [
        Visitor {
            device: DeviceClass::Tablet,
            ..all
        },
        Visitor { os: Os::Ios, ..all },
        Visitor {
            language: lang("en"),
            ..all
        },
        Visitor {
            country: Some(*b"FR"),
            ..all
        },
        Visitor {
            now: at(-11),
            ..all
        },
        Visitor { now: at(10), ..all },
        Visitor {
            query: "a=2",
            ..all
        },
    ];
    for miss in misses {
        assert_eq!(routing.choose(1, &miss), Choice::Default, "{miss:?}");
    }
}

#[test]
fn the_first_rule_that_holds_wins_and_rules_come_before_variants() {
    let rules = vec![
        rule(
            When {
                os: Some(Os::Ios),
                ..When::default()
            },
            "https://ios.example",
        ),
        rule(
            When {
                device: Some(DeviceClass::Desktop),
                ..When::default()
            },
            "https://desktop.example",
        ),
        rule(
            When {
                os: Some(Os::Linux),
                ..When::default()
            },
            "https://linux.example",
        ),
    ];
    let routing = routing(rules, &[1, 1]);
    assert_eq!(routing.choose(1, &plain()), Choice::Rule(1));
    assert_eq!(
        routing.target(Choice::Rule(1), "https://default.example"),
        "https://desktop.example"
    );
    let phone = Visitor {
        device: DeviceClass::Mobile,
        os: Os::Android,
        ..plain()
    };
    assert!(matches!(routing.choose(1, &phone), Choice::Variant(_)));
}

#[test]
fn without_rules_that_hold_or_variants_a_visit_goes_to_the_default() {
    let routing = one_rule(When {
        os: Some(Os::Ios),
        ..When::default()
    });
    assert_eq!(routing.choose(1, &plain()), Choice::Default);
    assert_eq!(
        routing.target(Choice::Default, "https://default.example"),
        "https://default.example"
    );
    assert!(Routing::default().is_empty());
}

#[test]
fn ten_thousand_visitors_split_seventy_thirty_within_three_points() {
    let routing = routing(Vec::new(), &[70, 30]);
    let mut firsts = 0;
    for visitor in 0..10_000_u32 {
        let key = visitor_key(format!("visitor-{visitor}").as_bytes());
        if routing.choose(42, &Visitor { key, ..plain() }) == Choice::Variant(0) {
            firsts += 1;
        }
    }
    assert!(
        (6_700..=7_300).contains(&firsts),
        "{firsts} of 10000 on the 70 variant"
    );
}

#[test]
fn one_visitor_gets_the_same_variant_every_time() {
    let routing = routing(Vec::new(), &[1, 1, 1, 1]);
    let visitor = Visitor {
        key: visitor_key(b"sl_vid value"),
        ..plain()
    };
    let first = routing.choose(9, &visitor);
    assert!(matches!(first, Choice::Variant(_)));
    for _ in 0..100 {
        assert_eq!(routing.choose(9, &visitor), first);
    }
}

#[test]
fn a_variant_of_weight_998_in_1000_gets_nearly_everyone_and_the_small_ones_some() {
    let routing = routing(Vec::new(), &[1, 1, 998]);
    let mut counts = [0_u32; 3];
    for visitor in 0..100_000_u64 {
        match routing.choose(
            3,
            &Visitor {
                key: visitor_key(&visitor.to_le_bytes()),
                ..plain()
            },
        ) {
            Choice::Variant(index) => counts[index] += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(counts[2] >= 99_600, "{counts:?}");
    assert!(counts[0] > 20 && counts[1] > 20, "{counts:?}");
}

#[test]
fn one_visitor_lands_on_unrelated_variants_of_different_links() {
    let routing = routing(Vec::new(), &[1, 1]);
    let visitor = Visitor {
        key: visitor_key(b"one visitor"),
        ..plain()
    };
    let firsts = (0..1_000)
        .filter(|&link| routing.choose(link, &visitor) == Choice::Variant(0))
        .count();
    assert!(
        (400..=600).contains(&firsts),
        "{firsts} of 1000 links on the first variant"
    );
}

#[test]
fn needs_names_the_attributes_rules_look_at() {
    let routing = one_rule(When {
        os: Some(Os::Ios),
        language: lang("de"),
        ..When::default()
    });
    let needs = routing.needs();
    assert!(needs.os && needs.language);
    assert!(!needs.device && !needs.country && !needs.query && !needs.key);
}

#[test]
fn heap_bytes_grows_with_rules() {
    let small = one_rule(When {
        os: Some(Os::Ios),
        ..When::default()
    });
    let mut large = small.clone();
    large.rules.push(rule(
        When {
            country: Some(*b"DE"),
            ..When::default()
        },
        "https://a.much.longer.example/path",
    ));
    assert!(Routing::default().heap_bytes() == 0);
    assert!(small.heap_bytes() > 0 && large.heap_bytes() > small.heap_bytes());
}
