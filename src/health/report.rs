//! Running the checks: each under `health.check_timeout_ms`, all at once,
//! into a [`Report`].

use super::COMPONENTS;
use super::handle::Health;
use super::sample::{Sample, View};
use super::status::{Check, Report, Status};
use std::collections::BTreeMap;
use std::sync::Arc;

impl Health {
    /// Every check, each under the check timeout, run at once, on the
    /// live figures.
    pub async fn report(&self) -> Report {
        self.report_on(self.take()).await
    }

    /// Every check, on `now` (a snapshot just taken).
    pub async fn report_on(&self, now: Sample) -> Report {
        let view = self.view(now);
        let checks = futures_util::future::join_all(COMPONENTS.iter().map(|&name| {
            let view = view.clone();
            async move { (name, self.check_on(name, view).await) }
        }))
        .await;
        let checks: BTreeMap<_, _> = checks
            .into_iter()
            .filter_map(|(name, c)| c.map(|c| (name, c)))
            .collect();
        let status = checks
            .values()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Healthy);
        Report { status, checks }
    }

    /// One component's check (`None`: no such component), under the check
    /// timeout.
    pub async fn check(&self, component: &str) -> Option<Check> {
        self.check_on(component, self.view(self.take())).await
    }

    async fn check_on(&self, component: &str, v: Arc<View>) -> Option<Check> {
        let timeout = self.inner.settings.health.check_timeout_ms;
        let check = super::checks::run(self, component, v);
        match tokio::time::timeout(timeout, check).await {
            Ok(c) => c,
            Err(_) => COMPONENTS
                .contains(&component)
                .then(|| Check::timed_out(timeout)),
        }
    }
}
