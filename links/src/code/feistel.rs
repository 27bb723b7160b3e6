//! A keyed permutation of `[0, domain)` for any domain size: a balanced Feistel network over the fewest even
//! number of bits that holds the domain, with cycle-walking (a value that lands outside the domain is put through
//! the network again until it lands inside). Cycle-walking a permutation of a superset gives a permutation of the
//! subset, and the superset is less than four times the domain (for 62^7: 2^42 / 62^7 ≈ 1.25 passes on average).
//!
//! Why Feistel: it is a bijection whatever its round function, so uniqueness rests on arithmetic, not on the
//! key; its inverse is the same network run backwards, which the redirect needs to tell which number a code came
//! from. The round function is SipHash-2-4 (a keyed PRF) of the round, the domain's tweak and the half; eight
//! rounds, where four already make a strong pseudo-random permutation for large halves (Luby–Rackoff), because
//! our halves are small (21 bits for 7 characters).

use siphasher::sip::SipHasher24;

/// Rounds of the network.
const ROUNDS: u8 = 8;

/// A keyed bijection of `[0, domain)`.
#[derive(Clone)]
pub struct Feistel {
    prf: SipHasher24,
    domain: u64,
    /// Bits in each half.
    half_bits: u32,
    /// Told to the round function, so permutations of different domains under one key are unrelated.
    tweak: u8,
}

impl Feistel {
    /// The permutation of `[0, domain)` under the 128-bit `key`; `tweak` tells apart permutations sharing the
    /// key. `domain` must be at least 2.
    pub fn new(key: [u8; 16], domain: u64, tweak: u8) -> Self {
        let bits = (u64::BITS - (domain.max(2) - 1).leading_zeros()).next_multiple_of(2);
        Self {
            prf: SipHasher24::new_with_key(&key),
            domain: domain.max(2),
            half_bits: bits / 2,
            tweak,
        }
    }

    /// The size of the domain.
    pub fn domain(&self) -> u64 {
        self.domain
    }

    /// The image of `value`; `None` outside the domain.
    pub fn permute(&self, value: u64) -> Option<u64> {
        (value < self.domain).then(|| self.walk(value, |x| self.forward(x)))
    }

    /// The value whose image is `image`; `None` outside the domain.
    pub fn invert(&self, image: u64) -> Option<u64> {
        (image < self.domain).then(|| self.walk(image, |x| self.backward(x)))
    }

    fn walk(&self, mut value: u64, pass: impl Fn(u64) -> u64) -> u64 {
        loop {
            value = pass(value);
            if value < self.domain {
                return value;
            }
        }
    }

    fn forward(&self, value: u64) -> u64 {
        let (mut left, mut right) = (value >> self.half_bits, value & self.mask());
        for round in 0..ROUNDS {
            (left, right) = (right, left ^ self.round(round, right));
        }
        (left << self.half_bits) | right
    }

    fn backward(&self, value: u64) -> u64 {
        let (mut left, mut right) = (value >> self.half_bits, value & self.mask());
        for round in (0..ROUNDS).rev() {
            (left, right) = (right ^ self.round(round, left), left);
        }
        (left << self.half_bits) | right
    }

    fn round(&self, round: u8, half: u64) -> u64 {
        let mut input = [0u8; 10];
        input[0] = round;
        input[1] = self.tweak;
        input[2..].copy_from_slice(&half.to_le_bytes());
        self.prf.hash(&input) & self.mask()
    }

    fn mask(&self) -> u64 {
        (1u64 << self.half_bits) - 1
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_bijection_of_small_domains_that_its_inverse_inverts(
            key in any::<[u8; 16]>(), domain in 2u64..600, tweak in any::<u8>()
        ) {
            let feistel = Feistel::new(key, domain, tweak);
            let mut seen = vec![false; usize::try_from(domain).expect("small")];
            for value in 0..domain {
                let image = feistel.permute(value).expect("inside the domain");
                prop_assert!(image < domain);
                let slot = &mut seen[usize::try_from(image).expect("small")];
                prop_assert!(!*slot, "{image} twice");
                *slot = true;
                prop_assert_eq!(feistel.invert(image), Some(value));
            }
        }

        #[test]
        fn large_domains_round_trip(key in any::<[u8; 16]>(), value in 0u64..62u64.pow(7)) {
            let feistel = Feistel::new(key, 62u64.pow(7), 7);
            let image = feistel.permute(value).expect("inside");
            prop_assert!(image < 62u64.pow(7));
            prop_assert_eq!(feistel.invert(image), Some(value));
        }
    }

    #[test]
    fn values_outside_the_domain_have_no_image() {
        let feistel = Feistel::new([7; 16], 1_000, 0);
        assert_eq!(feistel.permute(1_000), None);
        assert_eq!(feistel.invert(u64::MAX), None);
    }

    #[test]
    fn another_key_or_tweak_is_another_permutation() {
        let domain = 62u64.pow(7);
        let images = |feistel: Feistel| (0..64).map(|n| feistel.permute(n)).collect::<Vec<_>>();
        let base = images(Feistel::new([1; 16], domain, 7));
        assert_ne!(base, images(Feistel::new([2; 16], domain, 7)));
        assert_ne!(base, images(Feistel::new([1; 16], domain, 8)));
    }
}
