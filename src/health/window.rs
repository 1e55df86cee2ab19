//! The sliding window of snapshots both health records keep (the
//! HealthMonitor's [`super::Sample`]s and the WebSocket gateway's, in
//! [`super::websocket`]): a snapshot every sample interval, kept for the
//! window; a figure compares the live values with the oldest snapshot kept,
//! so it describes the last few minutes, not the whole life of the
//! process.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Snapshots of `S` over a window: [`Window::record`] every sample
/// interval, [`Window::oldest`] to compare with.
pub struct Window<S> {
    span: Duration,
    samples: VecDeque<(Instant, S)>,
}

impl<S: Clone> Window<S> {
    pub fn new(span: Duration) -> Self {
        Self {
            span,
            samples: VecDeque::new(),
        }
    }

    /// Keeps `sample`, dropping what the window no longer needs (the oldest
    /// sample kept stays at least the span old once there is one).
    pub fn record(&mut self, sample: S) {
        self.samples.push_back((Instant::now(), sample));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(at, _)| at.elapsed() >= self.span)
        {
            self.samples.pop_front();
        }
    }

    /// The newest sample at least `age` old (the oldest kept when none is
    /// that old yet) and its age.
    pub fn at_least(&self, age: Duration) -> Option<(Duration, S)> {
        self.samples
            .iter()
            .rev()
            .find(|(at, _)| at.elapsed() >= age)
            .or_else(|| self.samples.front())
            .map(|(at, s)| (at.elapsed(), s.clone()))
    }

    /// The oldest sample kept and its age.
    pub fn oldest(&self) -> Option<(Duration, S)> {
        self.samples
            .front()
            .map(|(at, s)| (at.elapsed(), s.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn the_window_keeps_one_sample_at_least_its_span_old() {
        tokio::time::pause();
        let mut w = Window::new(Duration::from_secs(60));
        for i in 0..10u32 {
            w.record(i);
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        let (age, oldest) = w.oldest().unwrap();
        // Samples at 0..90 s, pruned at the last record (90 s): the oldest
        // kept (30 s) was 60 s old then, the next one (40 s) younger.
        assert_eq!(oldest, 3);
        assert_eq!(age, Duration::from_secs(70));
    }
}
