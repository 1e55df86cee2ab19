//! Restart latency of the supervision runtime: the time from a panic inside a
//! child to the child running again, on the real clock.
//!
//! `cargo bench --bench restart_latency` prints, for the default policy
//! (backoff base 100 ms, jitter 20 %) and for a zero backoff (the runtime's own
//! overhead), the median, p95 and max over fresh trees (so every sample is a
//! *first* restart), plus the same for 200 consecutive restarts with zero
//! backoff.

use actix::prelude::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tgvisor::supervisor::{
    Backoff, ChildSpec, SupervisionEventKind, SupervisionPolicy, SupervisionRuntime, SupervisorSpec,
};

struct Idle;
impl Actor for Idle {
    type Context = Context<Self>;
}

fn policy(base: Duration, jitter: f64) -> SupervisionPolicy {
    SupervisionPolicy {
        max_restarts: 1_000_000,
        period: Duration::from_secs(1),
        backoff: Backoff {
            base,
            jitter,
            ..Backoff::default()
        },
        ..SupervisionPolicy::default()
    }
}

/// Crash the child `restarts` times in one tree; the latency of each restart.
async fn run_tree(policy: SupervisionPolicy, restarts: u64) -> Vec<Duration> {
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let (spec, _child) = ChildSpec::new("idle", |_| Idle);
    let root = SupervisorSpec::new("root")
        .policy(policy)
        .child(spec)
        .start_root(runtime.clone());
    let mut samples = Vec::new();
    let mut generation = 1;
    wait_started(&mut events, generation).await;
    for _ in 0..restarts {
        let crashed = Instant::now();
        assert!(runtime.inject_panic("root/idle", "bench"));
        generation += 1;
        wait_started(&mut events, generation).await;
        samples.push(crashed.elapsed());
    }
    root.do_send(tgvisor::supervisor::StopTree);
    samples
}

async fn wait_started(
    events: &mut tokio::sync::broadcast::Receiver<tgvisor::supervisor::SupervisionEvent>,
    generation: u64,
) {
    loop {
        let e = events.recv().await.expect("event stream");
        if matches!(e.kind, SupervisionEventKind::Started { generation: g } if g == generation) {
            return;
        }
    }
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label:<48} n={:<4} median={:>8.3} ms  p95={:>8.3} ms  max={:>8.3} ms",
        samples.len(),
        ms(pick(0.5)),
        ms(pick(0.95)),
        ms(pick(1.0)),
    );
}

fn main() {
    // Panics are the point here; keep them off the terminal.
    std::panic::set_hook(Box::new(|_| {}));
    actix_rt::System::new().block_on(async {
        let mut first_default = Vec::new();
        let mut first_zero = Vec::new();
        for _ in 0..30 {
            first_default.extend(run_tree(policy(Duration::from_millis(100), 0.2), 1).await);
            first_zero.extend(run_tree(policy(Duration::ZERO, 0.0), 1).await);
        }
        report(
            "first restart, default backoff (100 ms, 20% jitter)",
            first_default,
        );
        report("first restart, zero backoff (runtime overhead)", first_zero);
        report(
            "consecutive restarts, zero backoff",
            run_tree(policy(Duration::ZERO, 0.0), 200).await,
        );
    });
}
