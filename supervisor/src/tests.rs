//! Supervision semantics, on tokio's paused clock.

use super::*;
use actix::prelude::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::Instant;

/// A log shared between a test and the actors it starts.
type Log = Arc<Mutex<Vec<String>>>;

struct Worker {
    name: &'static str,
    log: Log,
    exit: ExitSignal,
    /// Panic in `started` while this is positive (counts down per start).
    crash_on_start: Arc<Mutex<u32>>,
}

impl Actor for Worker {
    type Context = Context<Self>;
    fn started(&mut self, _: &mut Context<Self>) {
        let crash = {
            let mut left = self.crash_on_start.lock().unwrap();
            let crash = *left > 0;
            *left = left.saturating_sub(1);
            crash
        };
        if crash {
            panic!("{} failed to start", self.name);
        }
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.lock().unwrap().push(format!("stop {}", self.name));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
enum Cmd {
    Panic,
    Fail,
    Quit,
}

#[derive(Message)]
#[rtype(result = "String")]
struct Hello;

impl Handler<Cmd> for Worker {
    type Result = ();
    fn handle(&mut self, cmd: Cmd, ctx: &mut Context<Self>) {
        match cmd {
            Cmd::Panic => panic!("boom in {}", self.name),
            Cmd::Fail => {
                self.exit.fail("lost my connection");
                ctx.stop();
            }
            Cmd::Quit => ctx.stop(),
        }
    }
}

impl Handler<Hello> for Worker {
    type Result = String;
    fn handle(&mut self, _: Hello, _: &mut Context<Self>) -> String {
        self.name.to_owned()
    }
}

struct Fixture {
    log: Log,
    starts: Arc<Mutex<Vec<(String, Instant)>>>,
    runtime: Arc<SupervisionRuntime>,
}

impl Fixture {
    fn new() -> Self {
        Self {
            log: Arc::default(),
            starts: Arc::default(),
            runtime: Arc::new(SupervisionRuntime::standalone()),
        }
    }

    fn worker(&self, name: &'static str, crash_on_start: u32) -> (ChildSpec, ChildRef<Worker>) {
        let log = self.log.clone();
        let starts = self.starts.clone();
        let crashes = Arc::new(Mutex::new(crash_on_start));
        ChildSpec::new(name, move |cctx| {
            log.lock().unwrap().push(format!("start {name}"));
            starts
                .lock()
                .unwrap()
                .push((name.to_owned(), Instant::now()));
            Worker {
                name,
                log: log.clone(),
                exit: cctx.exit.clone(),
                crash_on_start: crashes.clone(),
            }
        })
    }

    fn starts_of(&self, name: &str) -> Vec<Instant> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect()
    }

    fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

fn policy(max_restarts: u32) -> SupervisionPolicy {
    SupervisionPolicy {
        max_restarts,
        period: Duration::from_secs(60),
        backoff: Backoff {
            jitter: 0.0,
            ..Backoff::default()
        },
        reset_after: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
    }
}

/// Wait (in virtual time) for the first event matching `pred`.
async fn wait_for(
    rx: &mut broadcast::Receiver<SupervisionEvent>,
    pred: impl Fn(&SupervisionEvent) -> bool,
) -> SupervisionEvent {
    tokio::time::timeout(Duration::from_secs(3600), async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return e,
                Ok(_) => {}
                Err(e) => panic!("event stream broke: {e}"),
            }
        }
    })
    .await
    .expect("the expected supervision event never came")
}

fn is_started(path: &str, generation: u64) -> impl Fn(&SupervisionEvent) -> bool + '_ {
    move |e| {
        e.actor == path
            && matches!(e.kind, SupervisionEventKind::Started { generation: g } if g == generation)
    }
}

/// A delay in whole milliseconds, minus the 1 ms that tokio's timer wheel
/// adds by rounding every deadline up to its next tick.
fn ms(d: Duration) -> u128 {
    let m = d.as_millis();
    assert!(m > 0, "no delay at all");
    m - 1
}

#[actix_rt::test]
async fn restarts_back_off_exponentially_from_the_base_delay() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, _) = fx.worker("flaky", 4);
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec)
        .start_root(fx.runtime.clone());

    wait_for(&mut events, is_started("root/flaky", 5)).await;

    let starts = fx.starts_of("flaky");
    let gaps: Vec<u128> = starts.windows(2).map(|w| ms(w[1] - w[0])).collect();
    assert_eq!(gaps, [100, 200, 400, 800]);
    let m = fx.runtime.status("root/flaky").unwrap();
    assert_eq!(m.state, RunState::Running);
    assert_eq!(m.restarts, 4);
}

#[actix_rt::test]
async fn backoff_resets_after_a_child_stayed_up_long_enough() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, child) = fx.worker("w", 0);
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/w", 1)).await;

    // Two quick crashes: 100 ms, then 200 ms.
    child.send(Cmd::Panic).await.ok();
    wait_for(&mut events, is_started("root/w", 2)).await;
    child.send(Cmd::Panic).await.ok();
    wait_for(&mut events, is_started("root/w", 3)).await;
    // Up for longer than reset_after (30 s): the next delay is the base again.
    tokio::time::sleep(Duration::from_secs(31)).await;
    let crash_at = Instant::now();
    child.send(Cmd::Panic).await.ok();
    wait_for(&mut events, is_started("root/w", 4)).await;

    let starts = fx.starts_of("w");
    assert_eq!(ms(starts[1] - starts[0]), 100);
    assert_eq!(ms(starts[2] - starts[1]), 200);
    assert_eq!(ms(starts[3] - crash_at), 100);
}

#[actix_rt::test]
async fn a_panic_in_a_handler_is_an_abnormal_exit_and_is_restarted() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, child) = fx.worker("w", 0);
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec.restart(Restart::Transient))
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/w", 1)).await;

    let _ = child.send(Cmd::Panic).await;
    let exit = wait_for(&mut events, |e| {
        e.actor == "root/w" && matches!(e.kind, SupervisionEventKind::Exited { .. })
    })
    .await;
    match exit.kind {
        SupervisionEventKind::Exited { reason, abnormal } => {
            assert!(abnormal);
            assert_eq!(reason, "panic: boom in w");
        }
        other => panic!("unexpected {other:?}"),
    }
    wait_for(&mut events, is_started("root/w", 2)).await;
    assert_eq!(child.send(Hello).await, Ok("w".to_owned()));
    assert_eq!(fx.runtime.status("root/w").unwrap().restarts, 1);
}

#[actix_rt::test]
async fn transient_children_restart_only_after_abnormal_exits() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (t_spec, transient) = fx.worker("transient", 0);
    let (p_spec, permanent) = fx.worker("permanent", 0);
    let (tmp_spec, temporary) = fx.worker("temporary", 0);
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(t_spec.restart(Restart::Transient))
        .child(p_spec)
        .child(tmp_spec.restart(Restart::Temporary))
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/temporary", 1)).await;

    // An error exit restarts the transient child.
    let _ = transient.send(Cmd::Fail).await;
    wait_for(&mut events, is_started("root/transient", 2)).await;
    // A normal exit restarts the permanent child...
    let _ = permanent.send(Cmd::Quit).await;
    wait_for(&mut events, is_started("root/permanent", 2)).await;
    // ...but not the transient one, and a temporary child never comes back.
    let _ = transient.send(Cmd::Quit).await;
    let _ = temporary.send(Cmd::Panic).await;
    tokio::time::sleep(Duration::from_secs(120)).await;

    assert_eq!(
        fx.runtime.status("root/transient").unwrap().state,
        RunState::Stopped
    );
    assert_eq!(
        fx.runtime.status("root/temporary").unwrap().state,
        RunState::Stopped
    );
    assert_eq!(
        fx.runtime.status("root/permanent").unwrap().state,
        RunState::Running
    );
    assert_eq!(fx.starts_of("transient").len(), 2);
    assert_eq!(fx.starts_of("temporary").len(), 1);
    assert!(transient.addr().is_none());
    assert!(temporary.addr().is_none());
}

#[actix_rt::test]
async fn one_for_all_stops_siblings_in_reverse_and_restarts_all_in_order() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (a, _) = fx.worker("a", 0);
    let (b, b_ref) = fx.worker("b", 0);
    let (c, _) = fx.worker("c", 0);
    let _root = SupervisorSpec::new("root")
        .strategy(Strategy::OneForAll)
        .policy(policy(10))
        .child(a)
        .child(b)
        .child(c)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/c", 1)).await;
    assert_eq!(fx.take_log(), ["start a", "start b", "start c"]);

    let _ = b_ref.send(Cmd::Panic).await;
    wait_for(&mut events, is_started("root/c", 2)).await;

    assert_eq!(
        fx.take_log(),
        [
            "stop b", "stop c", "stop a", "start a", "start b", "start c"
        ]
    );
    let snapshot = fx.runtime.snapshot();
    assert_eq!(snapshot["root/a"].restarts, 1);
    assert_eq!(snapshot["root/b"].restarts, 1);
    assert!(snapshot.values().all(|s| s.state == RunState::Running));
}

#[actix_rt::test]
async fn rest_for_one_restarts_only_later_siblings() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (a, _) = fx.worker("a", 0);
    let (b, b_ref) = fx.worker("b", 0);
    let (c, _) = fx.worker("c", 0);
    let _root = SupervisorSpec::new("root")
        .strategy(Strategy::RestForOne)
        .policy(policy(10))
        .child(a)
        .child(b)
        .child(c)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/c", 1)).await;
    fx.take_log();

    let _ = b_ref.send(Cmd::Fail).await;
    wait_for(&mut events, is_started("root/c", 2)).await;
    assert_eq!(fx.take_log(), ["stop b", "stop c", "start b", "start c"]);
}

#[actix_rt::test]
async fn callers_never_hold_a_stale_address() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, child) = fx.worker("w", 0);
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec)
        .start_root(fx.runtime.clone());
    let old = child.ready().await.unwrap();
    assert_eq!(child.generation(), 1);

    let _ = old.send(Cmd::Panic).await;
    wait_for(&mut events, |e| {
        e.actor == "root/w" && matches!(e.kind, SupervisionEventKind::Exited { .. })
    })
    .await;
    // While it is down the handle says so instead of handing out a dead address.
    assert!(child.addr().is_none());
    assert_eq!(child.send(Hello).await, Err(ChildUnavailable));

    let new = child.ready().await.unwrap();
    assert_eq!(child.generation(), 2);
    assert_ne!(old, new);
    assert!(!old.connected());
    assert!(old.send(Hello).await.is_err());
    assert_eq!(child.send(Hello).await, Ok("w".to_owned()));
}

#[actix_rt::test]
async fn a_panicking_factory_is_a_failed_start_retried_with_backoff() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let attempts = Arc::new(Mutex::new(Vec::new()));
    let seen = attempts.clone();
    let log = fx.log.clone();
    let (spec, child) = ChildSpec::new("fragile", move |cctx| {
        seen.lock().unwrap().push(Instant::now());
        if seen.lock().unwrap().len() < 3 {
            panic!("config not ready");
        }
        Worker {
            name: "fragile",
            log: log.clone(),
            exit: cctx.exit.clone(),
            crash_on_start: Arc::default(),
        }
    });
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, |e| {
        e.actor == "root/fragile" && matches!(e.kind, SupervisionEventKind::Started { .. })
    })
    .await;
    let times = attempts.lock().unwrap().clone();
    assert_eq!(times.len(), 3);
    assert_eq!(ms(times[1] - times[0]), 100);
    assert_eq!(ms(times[2] - times[1]), 200);
    assert_eq!(child.send(Hello).await, Ok("fragile".to_owned()));
}

#[actix_rt::test]
async fn too_many_restarts_stop_the_supervisor_and_escalate_to_the_root() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (always, _) = fx.worker("always", u32::MAX);
    let (steady, steady_ref) = fx.worker("steady", 0);
    let (sub_spec, _) = SupervisorSpec::new("sub")
        .policy(policy(2))
        .child(always)
        .into_child(fx.runtime.clone());
    let root = SupervisorSpec::new("root")
        .policy(policy(1))
        .child(steady)
        .child(sub_spec)
        .start_root(fx.runtime.clone());

    // The subtree gives up after its 3rd restart attempt (2 allowed) ...
    let gave_up = wait_for(&mut events, |e| {
        matches!(e.kind, SupervisionEventKind::GaveUp { .. })
    })
    .await;
    assert_eq!(gave_up.actor, "root/sub");
    // ... the root restarts it once (1 allowed), it gives up again, and the
    // root gives up in turn: the service is now unhealthy.
    let root_gave_up = wait_for(&mut events, |e| {
        e.actor == "root" && matches!(e.kind, SupervisionEventKind::GaveUp { .. })
    })
    .await;
    match root_gave_up.kind {
        SupervisionEventKind::GaveUp { cause, .. } => {
            assert!(cause.contains("root/sub"), "{cause}")
        }
        other => panic!("unexpected {other:?}"),
    }
    // Let the root finish stopping its children.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let failure = fx.runtime.root_failure().expect("root failure recorded");
    assert!(failure.starts_with("root: "), "{failure}");
    let snapshot = fx.runtime.snapshot();
    assert_eq!(snapshot["root"].state, RunState::Failed);
    assert_eq!(snapshot["root/steady"].state, RunState::Stopped);
    assert!(steady_ref.addr().is_none());
    // The root itself stays up to answer questions about what happened.
    assert!(root.connected());
}

#[actix_rt::test]
async fn stop_tree_stops_children_in_reverse_start_order() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (a, a_ref) = fx.worker("a", 0);
    let (b, _) = fx.worker("b", 0);
    let (sub_c, _) = fx.worker("c", 0);
    let (sub, _) = SupervisorSpec::new("sub")
        .child(sub_c)
        .into_child(fx.runtime.clone());
    let root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(a)
        .child(b)
        .child(sub)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/sub/c", 1)).await;
    fx.take_log();

    root.send(StopTree).await.unwrap();

    assert_eq!(fx.take_log(), ["stop c", "stop b", "stop a"]);
    assert!(a_ref.addr().is_none());
    let snapshot = fx.runtime.snapshot();
    assert_eq!(snapshot["root/a"].last_exit.as_deref(), Some("shutdown"));
    assert_eq!(snapshot["root/sub"].state, RunState::Stopped);
    // Nothing comes back after a shutdown.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(fx.starts_of("a").len(), 1);
}

#[actix_rt::test]
async fn injected_panics_fail_the_actor_from_inside() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, child) = fx.worker("w", 0);
    let root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(spec)
        .start_root(fx.runtime.clone());
    wait_for(&mut events, is_started("root/w", 1)).await;

    let injected = root
        .send(InjectPanic {
            path: "root/w".into(),
            message: "injected fault".into(),
        })
        .await
        .unwrap();
    assert!(injected);
    wait_for(&mut events, is_started("root/w", 2)).await;
    let status = fx.runtime.status("root/w").unwrap();
    assert_eq!(status.last_exit.as_deref(), Some("panic: injected fault"));
    assert!(!fx.runtime.inject_panic("root/nobody", "x"));
    assert_eq!(child.send(Hello).await, Ok("w".to_owned()));
}

#[actix_rt::test]
async fn dynamic_children_are_added_refused_twice_and_removed_for_good() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, list) = SupervisorSpec::new("accounts").policy(policy(10)).dynamic();
    let sup = spec.start_root(fx.runtime.clone());

    let (a, a_ref) = fx.worker("a", 0);
    let (b, _) = fx.worker("b", 0);
    assert_eq!(sup.send(AddChild(a.clone())).await.unwrap(), Ok(()));
    assert_eq!(sup.send(AddChild(b)).await.unwrap(), Ok(()));
    wait_for(&mut events, is_started("accounts/a", 1)).await;
    assert_eq!(a_ref.send(Hello).await, Ok("a".to_owned()));
    assert_eq!(
        sup.send(AddChild(a)).await.unwrap(),
        Err(AddChildError::Exists)
    );
    assert_eq!(list.names(), ["a", "b"]);

    // A removed child is stopped, not restarted, and forgotten.
    assert!(sup.send(RemoveChild("a".into())).await.unwrap());
    assert!(a_ref.addr().is_none());
    assert!(fx.take_log().contains(&"stop a".to_owned()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(a_ref.addr().is_none(), "a removed child came back");
    assert!(fx.runtime.status("accounts/a").is_none());
    assert!(fx.runtime.status("accounts/b").is_some());
    assert_eq!(list.names(), ["b"]);
    assert!(!sup.send(RemoveChild("a".into())).await.unwrap());

    // Static supervisors refuse dynamic children.
    let fixed = SupervisorSpec::new("fixed").start_root(fx.runtime.clone());
    let (c, _) = fx.worker("c", 0);
    assert_eq!(
        fixed.send(AddChild(c)).await.unwrap(),
        Err(AddChildError::NotDynamic)
    );
}

#[actix_rt::test]
async fn per_child_intensity_gives_up_one_child_and_spares_its_siblings() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (spec, _) = SupervisorSpec::new("accounts")
        .policy(policy(2))
        .intensity(Intensity::PerChild)
        .dynamic();
    let sup = spec.start_root(fx.runtime.clone());
    let (bad, _) = fx.worker("bad", u32::MAX);
    let (good, good_ref) = fx.worker("good", 0);
    sup.send(AddChild(good)).await.unwrap().unwrap();
    sup.send(AddChild(bad)).await.unwrap().unwrap();

    let gave_up = wait_for(&mut events, |e| {
        matches!(e.kind, SupervisionEventKind::GaveUp { .. })
    })
    .await;
    assert_eq!(gave_up.actor, "accounts/bad");
    // The sibling and the supervisor carry on.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(good_ref.send(Hello).await, Ok("good".to_owned()));
    let snapshot = fx.runtime.snapshot();
    assert_eq!(snapshot["accounts/bad"].state, RunState::Failed);
    assert_eq!(snapshot["accounts"].state, RunState::Running);
    assert_eq!(fx.starts_of("bad").len(), 3, "initial start + 2 restarts");
    assert!(fx.runtime.root_failure().is_none());
}

#[actix_rt::test]
async fn a_restarted_dynamic_supervisor_starts_its_children_again() {
    tokio::time::pause();
    let fx = Fixture::new();
    let mut events = fx.runtime.subscribe();
    let (flaky, flaky_ref) = fx.worker("flaky", 0);
    let (dyn_spec, _) = SupervisorSpec::new("accounts").policy(policy(2)).dynamic();
    let (sub_spec, sub) = dyn_spec.child(flaky).into_child(fx.runtime.clone());
    let _root = SupervisorSpec::new("root")
        .policy(policy(10))
        .child(sub_spec)
        .start_root(fx.runtime.clone());
    let sup = sub.ready().await.unwrap();
    let (acct, acct_ref) = fx.worker("acct", 0);
    sup.send(AddChild(acct)).await.unwrap().unwrap();
    wait_for(&mut events, is_started("root/accounts/acct", 1)).await;

    // The static child crashes 3 times: the supervisor (2 restarts allowed)
    // gives up and its parent restarts it.
    for generation in 2..=3 {
        let _ = flaky_ref.send(Cmd::Panic).await;
        wait_for(&mut events, is_started("root/accounts/flaky", generation)).await;
    }
    let _ = flaky_ref.send(Cmd::Panic).await;
    // The next incarnation starts both its static child and the dynamic one
    // (a fresh generation behind the same handle).
    wait_for(&mut events, is_started("root/accounts", 2)).await;
    wait_for(&mut events, is_started("root/accounts/acct", 1)).await;
    assert_eq!(acct_ref.send(Hello).await, Ok("acct".to_owned()));
    assert_eq!(fx.starts_of("acct").len(), 2);
}
