//! Figures from cumulative Prometheus families: a histogram's state
//! ([`HistogramState`]: what happened between two snapshots, its
//! percentiles and mean), counter sums over label children, shares and
//! milliseconds as reports show them.

use prometheus::core::Collector;
use prometheus::proto::MetricFamily;

/// A histogram's cumulative state, summed over the label children a filter
/// keeps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramState {
    pub count: u64,
    pub sum: f64,
    /// (upper bound, cumulative count), in bound order; `+Inf` is `count`.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramState {
    /// Sums the children of `c` whose labels `keep` accepts.
    pub fn of(c: &impl Collector, keep: impl Fn(&[(&str, &str)]) -> bool) -> Self {
        let mut state = Self::default();
        for family in c.collect() {
            add_family(&mut state, &family, &keep);
        }
        state
    }

    /// One state per value of `label`, in one collection of `c`.
    pub fn by_label(c: &impl Collector, label: &str) -> std::collections::BTreeMap<String, Self> {
        let mut out = std::collections::BTreeMap::<String, Self>::new();
        for family in c.collect() {
            for m in family.get_metric() {
                let value = m
                    .get_label()
                    .iter()
                    .find(|l| l.name() == label)
                    .map(|l| l.value().to_owned())
                    .unwrap_or_default();
                out.entry(value).or_default().add(m.get_histogram());
            }
        }
        out
    }

    fn add(&mut self, h: &prometheus::proto::Histogram) {
        self.count += h.get_sample_count();
        self.sum += h.get_sample_sum();
        for b in h.get_bucket() {
            let le = b.upper_bound();
            match self.buckets.iter_mut().find(|(bound, _)| *bound == le) {
                Some((_, n)) => *n += b.cumulative_count(),
                None => self.buckets.push((le, b.cumulative_count())),
            }
        }
        self.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| *b == le)
                    .map_or(0, |(_, c)| *c);
                (le, n.saturating_sub(before))
            })
            .collect();
        Self {
            count: self.count.saturating_sub(earlier.count),
            sum: (self.sum - earlier.sum).max(0.0),
            buckets,
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The `q` quantile (0..1), interpolated linearly inside its bucket the
    /// way Prometheus' `histogram_quantile` does; above the last finite
    /// bound, that bound (the figure is "at least").
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = q * self.count as f64;
        let mut lower = 0.0;
        let mut below = 0u64;
        for &(le, cumulative) in &self.buckets {
            if cumulative as f64 >= rank {
                let inside = cumulative.saturating_sub(below);
                if inside == 0 {
                    return Some(le);
                }
                let into = (rank - below as f64) / inside as f64;
                return Some(lower + (le - lower) * into.clamp(0.0, 1.0));
            }
            lower = le;
            below = cumulative;
        }
        Some(lower)
    }

    /// The upper bound of the highest bucket any observation fell in: the
    /// slowest observation was at most this (the last finite bound when it
    /// fell beyond every bound).
    pub fn max_bound(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let mut below = 0;
        let mut highest = None;
        for &(le, cumulative) in &self.buckets {
            if cumulative > below {
                highest = Some(le);
            }
            below = cumulative;
        }
        if self.count > below {
            // Beyond the last bound.
            return self.buckets.last().map(|&(le, _)| le);
        }
        highest
    }
}

impl HistogramState {
    /// The lower edge of the highest bucket any observation fell in: the
    /// slowest observation took at least this long.
    pub fn slowest_at_least(&self) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let mut lower = 0.0;
        let mut below = 0;
        let mut found = None;
        for &(le, cumulative) in &self.buckets {
            if cumulative > below {
                found = Some(lower);
            }
            below = cumulative;
            lower = le;
        }
        if self.count > below {
            // Beyond the last bound.
            found = Some(lower);
        }
        found
    }
}

fn labels(m: &prometheus::proto::Metric) -> Vec<(&str, &str)> {
    m.get_label()
        .iter()
        .map(|l| (l.name(), l.value()))
        .collect()
}

fn add_family(
    state: &mut HistogramState,
    family: &MetricFamily,
    keep: &impl Fn(&[(&str, &str)]) -> bool,
) {
    for m in family.get_metric() {
        if keep(&labels(m)) {
            state.add(m.get_histogram());
        }
    }
}

/// The sum of a counter family's children whose labels `keep` accepts.
pub fn counter_sum(c: &impl Collector, keep: impl Fn(&[(&str, &str)]) -> bool) -> u64 {
    c.collect()
        .iter()
        .flat_map(|f| f.get_metric())
        .filter(|m| keep(&labels(m)))
        .map(|m| m.get_counter().get_value() as u64)
        .sum()
}

/// `part / whole`, 0 when there is no whole.
pub fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Seconds as milliseconds, to a tenth.
pub(super) fn ms(secs: Option<f64>) -> Option<f64> {
    secs.map(|s| (s * 1000.0 * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::{Histogram, HistogramOpts};

    fn histogram() -> Histogram {
        Histogram::with_opts(HistogramOpts::new("h", "h").buckets(vec![0.1, 0.2, 0.5, 1.0]))
            .unwrap()
    }

    #[test]
    fn quantiles_interpolate_inside_buckets_and_use_only_the_window() {
        let h = histogram();
        // Before the window: slow observations that must not count.
        for _ in 0..100 {
            h.observe(0.9);
        }
        let then = HistogramState::of(&h, |_| true);
        for _ in 0..90 {
            h.observe(0.05);
        }
        for _ in 0..10 {
            h.observe(0.3);
        }
        let d = HistogramState::of(&h, |_| true).since(&then);
        assert_eq!(d.count, 100);
        // 50th of 100: inside (0, 0.1], halfway-ish.
        let p50 = d.quantile(0.5).unwrap();
        assert!((p50 - 0.1 * 50.0 / 90.0).abs() < 1e-9, "{p50}");
        // 95th: the 5th of the 10 in (0.2, 0.5].
        let p95 = d.quantile(0.95).unwrap();
        assert!((p95 - (0.2 + 0.3 * 0.5)).abs() < 1e-9, "{p95}");
        assert_eq!(d.max_bound(), Some(0.5));
        assert_eq!(d.slowest_at_least(), Some(0.2));
        assert!((d.mean().unwrap() - (90.0 * 0.05 + 10.0 * 0.3) / 100.0).abs() < 1e-9);
    }

    #[test]
    fn an_empty_window_has_no_figures_and_beyond_the_last_bound_is_that_bound() {
        let h = histogram();
        let then = HistogramState::of(&h, |_| true);
        assert_eq!(
            HistogramState::of(&h, |_| true).since(&then).quantile(0.9),
            None
        );
        h.observe(7.0);
        let d = HistogramState::of(&h, |_| true).since(&then);
        assert_eq!(d.quantile(0.99), Some(1.0));
        assert_eq!(d.max_bound(), Some(1.0));
        assert_eq!(d.slowest_at_least(), Some(1.0));
    }
}
