//! Which variant a visitor gets: a hash of the link and the visitor's key, split by weight. No state is kept
//! anywhere, so every replica, and every visit, gives one visitor the same variant of a link for as long as the
//! variants stay as they are. The link is in the hash so that one visitor's variants of different links are
//! unrelated (not always the first).
//!
//! The keys are fixed, not secret: knowing them only lets a visitor choose their own variant, which they could
//! do anyway by following its URL.

use siphasher::sip::SipHasher13;

use super::Variant;

/// Hashes an opaque visitor id: the `sl_vid` cookie's value, or the client's IP and User-Agent.
const VISITOR_KEY: [u8; 16] = *b"snowlink visitor";

/// Hashes a link and a visitor key to a point on the weights.
const VARIANT_KEY: [u8; 16] = *b"snowlink variant";

/// The key that keeps a visitor on one variant of each link, from an opaque visitor id.
pub fn visitor_key(bytes: &[u8]) -> u64 {
    SipHasher13::new_with_key(&VISITOR_KEY).hash(bytes)
}

/// The index of the variant the visitor with `key` gets on link `link_id`; `None` when no variant has weight.
pub(super) fn variant_of(variants: &[Variant], link_id: i64, key: u64) -> Option<usize> {
    let total: u64 = variants
        .iter()
        .map(|variant| u64::from(variant.weight))
        .sum();
    if total == 0 {
        return None;
    }
    let mut input = [0; 16];
    input[..8].copy_from_slice(&link_id.to_le_bytes());
    input[8..].copy_from_slice(&key.to_le_bytes());
    let hash = SipHasher13::new_with_key(&VARIANT_KEY).hash(&input);
    // The high bits of hash × total: a point in [0, total) as even as the hash, with no division.
    let mut point = ((u128::from(hash) * u128::from(total)) >> 64) as u64;
    variants.iter().position(|variant| {
        let weight = u64::from(variant.weight);
        if point < weight {
            true
        } else {
            point -= weight;
            false
        }
    })
}
