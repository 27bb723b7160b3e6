//! The items of a batch body, parsed without trusting their number: at most [`MAX_BATCH`] are kept as JSON
//! values, the rest are only counted (`IgnoredAny` allocates nothing), so a 4 MiB body of `[0,0,…]` costs its
//! buffer and a thousand values, not a value per item (~64 MB when every item was kept before the size check).
//! Skipping rather than failing the parse keeps the documented answer: 422 `invalid_batch_size` with the count.

use std::fmt;

use serde::{
    de::{IgnoredAny, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::Value;

/// Most items in one batch.
pub const MAX_BATCH: usize = 1000;

/// A batch's items: the first [`MAX_BATCH`] as JSON values (each parsed on its own later, so a malformed item
/// fails alone), and how many there were in all.
#[derive(Debug, Default)]
pub struct BatchItems {
    /// The first items, at most [`MAX_BATCH`].
    pub kept: Vec<Value>,
    /// How many items the body held.
    pub total: usize,
}

impl<'de> Deserialize<'de> for BatchItems {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(ItemsVisitor)
    }
}

struct ItemsVisitor;

impl<'de> Visitor<'de> for ItemsVisitor {
    type Value = BatchItems;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of create requests")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BatchItems, A::Error> {
        // A client's size hint is not trusted for the allocation.
        let mut items = BatchItems {
            kept: Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_BATCH)),
            total: 0,
        };
        while items.kept.len() < MAX_BATCH {
            match seq.next_element::<Value>()? {
                Some(item) => items.kept.push(item),
                None => break,
            }
        }
        items.total = items.kept.len();
        while seq.next_element::<IgnoredAny>()?.is_some() {
            items.total += 1;
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_four_mib_array_keeps_a_thousand_values_and_counts_the_rest() {
        let mut body = String::from("[0");
        while body.len() < 4 * 1024 * 1024 - 2 {
            body.push_str(",0");
        }
        body.push(']');
        let expected = body.len() / 2;

        let items: BatchItems = serde_json::from_str(&body).expect("an array");

        assert_eq!(items.kept.len(), MAX_BATCH);
        assert!(
            items.kept.capacity() < 2 * MAX_BATCH,
            "memory grows with the kept items only: capacity {}",
            items.kept.capacity()
        );
        assert_eq!(items.total, expected);
    }

    #[test]
    fn a_short_array_is_kept_whole_and_a_malformed_tail_still_fails() {
        let items: BatchItems = serde_json::from_str(r#"[{"a": 1}, 2]"#).expect("an array");
        assert_eq!((items.kept.len(), items.total), (2, 2));

        let mut long = "[0".to_owned() + &",0".repeat(MAX_BATCH + 5);
        long.push_str(",}]");
        assert!(serde_json::from_str::<BatchItems>(&long).is_err());
    }
}
