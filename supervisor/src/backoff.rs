//! Exponential backoff with jitter for restarts.

use rand::Rng;
use std::time::Duration;

/// `delay(n) = min(cap, base * factor^n)`, shortened by up to `jitter` of
/// itself at random so that children failing together do not restart in step.
#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    /// Delay before the first restart.
    pub base: Duration,
    /// Growth per consecutive restart.
    pub factor: f64,
    /// Upper bound of any delay.
    pub cap: Duration,
    /// Fraction (0..=1) of the delay that may be taken off at random.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(100),
            factor: 2.0,
            cap: Duration::from_secs(30),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before restart number `attempt` (0-based), without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.min(1024) as i32);
        let secs = self.base.as_secs_f64() * exp;
        if !secs.is_finite() || secs >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(secs)
        }
    }

    /// The delay before restart number `attempt`, with jitter applied.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let nominal = self.nominal(attempt);
        let jitter = self.jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return nominal;
        }
        nominal.mul_f64(1.0 - jitter * rng.random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn delays_double_from_the_base_up_to_the_cap() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        let got: Vec<u128> = (0..12).map(|n| b.nominal(n).as_millis()).collect();
        assert_eq!(
            got,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000, 30000
            ]
        );
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let b = Backoff::default();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let mut distinct = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let d = b.delay(3, &mut rng);
            assert!(d <= Duration::from_millis(800), "{d:?}");
            assert!(d >= Duration::from_millis(640), "{d:?}");
            distinct.insert(d);
        }
        assert!(distinct.len() > 100, "jitter should spread delays");
    }
}
