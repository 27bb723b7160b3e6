//! Properties of the variant pick over any weights, links and visitors.

use chrono::DateTime;
use proptest::prelude::*;

use super::super::{Choice, DeviceClass, Os, Routing, Variant, Visitor};

fn visitor(key: u64) -> Visitor<'static> {
    Visitor {
        device: DeviceClass::Desktop,
        os: Os::Other,
        language: None,
        country: None,
        now: DateTime::UNIX_EPOCH,
        query: "",
        key,
    }
}

proptest! {
    #[test]
    fn every_visitor_gets_one_of_the_variants_and_always_the_same(
        weights in prop::collection::vec(1_u16..=1000, 2..=10),
        link_id in any::<i64>(),
        key in any::<u64>(),
    ) {
        let variants = weights
            .iter()
            .map(|&weight| Variant { long_url: String::new(), weight })
            .collect();
        let routing = Routing { rules: Vec::new(), variants };
        let choice = routing.choose(link_id, &visitor(key));
        prop_assert!(matches!(choice, Choice::Variant(index) if index < weights.len()), "{choice:?}");
        prop_assert_eq!(routing.choose(link_id, &visitor(key)), choice);
    }
}
