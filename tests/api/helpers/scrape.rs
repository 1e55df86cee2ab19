//! Reading /metrics in tests: sums of samples, waiting for a scrape.

use super::TestApp;
use std::time::Duration;

/// The sum of the samples of `family` whose labels include every one of
/// `labels` (`name="value"`), in one scrape.
pub fn sample_sum(scrape: &str, family: &str, labels: &[&str]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(family)?;
            let matches = (rest.is_empty() || rest.starts_with('{'))
                && labels.iter().all(|want| rest.contains(want));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Waits (10 s at most) until `pred` holds of a scrape; answers it.
pub async fn scrape_until(app: &TestApp, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let scrape = app.metrics().await;
        if pred(&scrape) {
            return scrape;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never: {what}\n{scrape}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
