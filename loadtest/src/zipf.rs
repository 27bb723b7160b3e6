//! Popularity skew: ranks drawn with a Zipf distribution (P(k) ∝ 1/k^s over n ranks; s = 0 is uniform), the way
//! short-link traffic concentrates on a few hot links. Drawn by `rand_distr::Zipf` (rejection-inversion: exact,
//! constant time and memory per draw, where a precomputed CDF held n floats and searched them on every draw).

use rand::Rng;
use rand_distr::Distribution as _;

/// A Zipf sampler over ranks `0..n` (rank 0 is the most popular).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: usize,
    s: f64,
    /// Σ 1/k^s over the n ranks: turns a rank's weight into its probability.
    total: f64,
    draw: rand_distr::Zipf<f64>,
}

impl Zipf {
    /// A sampler over `n` ranks with exponent `s` (≥ 0).
    ///
    /// # Panics
    /// When `n` is 0 or `s` is negative or not finite (the command line refuses both first).
    pub fn new(n: usize, s: f64) -> Self {
        assert!(
            n > 0 && s.is_finite() && s >= 0.0,
            "Zipf needs n > 0 and s >= 0"
        );
        let draw = rand_distr::Zipf::new(n as f64, s)
            .unwrap_or_else(|error| unreachable!("checked above: {error}"));
        let total = (1..=n).map(|rank| (rank as f64).powf(-s)).sum();
        Self { n, s, total, draw }
    }

    /// The probability of rank `k` (0-based).
    pub fn probability(&self, k: usize) -> f64 {
        ((k + 1) as f64).powf(-self.s) / self.total
    }

    /// Draws a rank.
    pub fn sample(&self, rng: &mut impl Rng) -> usize {
        // rand_distr draws 1..=n as a float holding an integer.
        (self.draw.sample(rng) as usize).clamp(1, self.n) - 1
    }
}

#[cfg(test)]
mod tests {
    use rand::{rngs::SmallRng, SeedableRng};

    use super::*;

    /// Pearson's chi-square of `draws` samples from `source` against `theory`, over `bins` ranks plus a tail bin.
    fn chi_square(theory: &Zipf, source: &Zipf, draws: usize, bins: usize) -> f64 {
        let mut rng = SmallRng::seed_from_u64(42);
        let mut observed = vec![0usize; bins + 1];
        for _ in 0..draws {
            observed[source.sample(&mut rng).min(bins)] += 1;
        }
        let tail: f64 = (bins..theory.n).map(|k| theory.probability(k)).sum();
        observed
            .iter()
            .enumerate()
            .map(|(k, &seen)| {
                let p = if k == bins {
                    tail
                } else {
                    theory.probability(k)
                };
                let expected = p * draws as f64;
                (seen as f64 - expected).powi(2) / expected
            })
            .sum()
    }

    /// The 99.9th percentile of chi-square with 20 degrees of freedom (20 ranks + tail, minus one).
    const CHI2_20_999: f64 = 45.3;

    #[test]
    fn draws_follow_the_zipf_law() {
        let zipf = Zipf::new(10_000, 1.0);
        let statistic = chi_square(&zipf, &zipf, 200_000, 20);
        assert!(statistic < CHI2_20_999, "chi-square {statistic}");
    }

    #[test]
    fn a_wrong_exponent_is_detected() {
        // The same test must reject draws from s = 1.2 judged against s = 1.0, or it proves nothing.
        let statistic = chi_square(
            &Zipf::new(10_000, 1.0),
            &Zipf::new(10_000, 1.2),
            200_000,
            20,
        );
        assert!(statistic > CHI2_20_999, "chi-square {statistic}");
    }

    #[test]
    fn zero_skew_is_uniform() {
        let zipf = Zipf::new(4, 0.0);
        for k in 0..4 {
            assert!((zipf.probability(k) - 0.25).abs() < 1e-12);
        }
        let uniform = Zipf::new(50, 0.0);
        // chi-square with 49 degrees of freedom at 99.9%: 85.4.
        assert!(chi_square(&uniform, &uniform, 100_000, 49) < 85.4);
    }

    #[test]
    fn rank_frequency_halves_from_rank_one_to_two_at_s_one() {
        let zipf = Zipf::new(1_000, 1.0);
        assert!((zipf.probability(0) / zipf.probability(1) - 2.0).abs() < 1e-9);
    }
}
