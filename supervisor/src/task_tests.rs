//! Task children: panics, errors and fault injection restart them, and a
//! [`Handover`] keeps what they must not lose. On tokio's paused clock.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};

fn policy() -> SupervisionPolicy {
    SupervisionPolicy {
        max_restarts: 10,
        period: Duration::from_secs(60),
        backoff: Backoff {
            jitter: 0.0,
            ..Backoff::default()
        },
        reset_after: Duration::from_secs(30),
        shutdown_timeout: Duration::from_secs(5),
    }
}

async fn next_exit(rx: &mut broadcast::Receiver<SupervisionEvent>, path: &str) -> (String, bool) {
    loop {
        let e = rx.recv().await.expect("event stream broke");
        if e.actor == path
            && let SupervisionEventKind::Exited { reason, abnormal } = e.kind
        {
            return (reason, abnormal);
        }
    }
}

async fn started(rx: &mut broadcast::Receiver<SupervisionEvent>, path: &str, generation: u64) {
    loop {
        let e = rx.recv().await.expect("event stream broke");
        if e.actor == path
            && matches!(e.kind, SupervisionEventKind::Started { generation: g } if g == generation)
        {
            return;
        }
    }
}

/// A writer that answers each request with the generation that wrote it,
/// and panics on the request "panic".
type Request = (&'static str, oneshot::Sender<u64>);

fn writer(queue: Handover<mpsc::Receiver<Request>>, generations: Arc<AtomicU32>) -> ChildSpec {
    ChildSpec::task("writer", move |_| {
        let queue = queue.clone();
        let generation = u64::from(generations.fetch_add(1, Ordering::SeqCst) + 1);
        async move {
            let mut rx = queue.lease().ok_or("the queue is held")?;
            while let Some((body, reply)) = rx.recv().await {
                if body == "panic" {
                    panic!("writer hit a poisoned request");
                }
                let _ = reply.send(generation);
            }
            Ok(())
        }
    })
    .0
}

#[actix_rt::test]
async fn a_panicking_task_is_restarted_and_its_queue_keeps_what_was_waiting() {
    tokio::time::pause();
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let (tx, rx) = mpsc::channel::<Request>(16);
    let queue = Handover::new(rx);
    let _root = SupervisorSpec::new("root")
        .policy(policy())
        .child(writer(queue.clone(), Arc::default()))
        .start_root(runtime.clone());
    started(&mut events, "root/writer", 1).await;

    // The poisoned request, then two more queued behind it before the
    // writer gets to run.
    let (poison, lost) = oneshot::channel();
    tx.send(("panic", poison)).await.unwrap();
    let mut later = Vec::new();
    for body in ["a", "b"] {
        let (reply, answer) = oneshot::channel();
        tx.send((body, reply)).await.unwrap();
        later.push(answer);
    }

    let (reason, abnormal) = next_exit(&mut events, "root/writer").await;
    assert!(abnormal);
    assert_eq!(reason, "panic: writer hit a poisoned request");
    // The request being handled is answered by no one: its caller learns
    // it failed (it was never acknowledged).
    assert!(lost.await.is_err());
    // What waited behind it is written by the next generation.
    for answer in later {
        assert_eq!(answer.await.unwrap(), 2);
    }
    let status = runtime.status("root/writer").unwrap();
    assert_eq!(status.state, RunState::Running);
    assert_eq!(status.restarts, 1);
    assert!(queue.is_held(), "the new generation holds the queue");
}

#[actix_rt::test]
async fn an_injected_panic_restarts_a_task_after_its_backoff() {
    tokio::time::pause();
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let (tx, rx) = mpsc::channel::<Request>(16);
    let generations = Arc::new(AtomicU32::new(0));
    let _root = SupervisorSpec::new("root")
        .policy(policy())
        .child(writer(Handover::new(rx), generations.clone()))
        .start_root(runtime.clone());
    started(&mut events, "root/writer", 1).await;

    let at = tokio::time::Instant::now();
    assert!(runtime.inject_panic("root/writer", "injected"));
    let (reason, abnormal) = next_exit(&mut events, "root/writer").await;
    assert!(abnormal);
    assert_eq!(reason, "panic: injected");
    started(&mut events, "root/writer", 2).await;
    assert!(
        at.elapsed() >= Duration::from_millis(100),
        "restarted after the base backoff"
    );

    let (reply, answer) = oneshot::channel();
    tx.send(("after", reply)).await.unwrap();
    assert_eq!(answer.await.unwrap(), 2);
    assert_eq!(generations.load(Ordering::SeqCst), 2);
}

#[actix_rt::test]
async fn a_task_that_returns_an_error_exits_abnormally_and_one_that_ends_normally() {
    tokio::time::pause();
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let outcomes = Arc::new(Mutex::new(vec![
        Ok(()),
        Err("the database went away".to_owned()),
    ]));
    let (spec, _) = ChildSpec::task("once", move |_| {
        let next = outcomes.lock().unwrap().pop();
        async move {
            match next {
                Some(outcome) => outcome,
                None => std::future::pending().await,
            }
        }
    });
    let _root = SupervisorSpec::new("root")
        .policy(policy())
        .child(spec.restart(Restart::Transient))
        .start_root(runtime.clone());

    let (reason, abnormal) = next_exit(&mut events, "root/once").await;
    assert_eq!(
        (reason.as_str(), abnormal),
        ("error: the database went away", true)
    );
    // Transient: restarted after the error; its normal end is final.
    let (reason, abnormal) = next_exit(&mut events, "root/once").await;
    assert_eq!((reason.as_str(), abnormal), ("normal", false));
    assert_eq!(runtime.status("root/once").unwrap().restarts, 1);
}

#[actix_rt::test]
async fn a_graceful_task_finishes_what_it_holds_when_the_tree_stops() {
    tokio::time::pause();
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let (tx, rx) = mpsc::channel::<u32>(16);
    let queue = Handover::new(rx);
    let written = Arc::new(Mutex::new(Vec::new()));
    let (spec, _) = ChildSpec::graceful_task("writer", {
        let written = written.clone();
        move |_, mut stop| {
            let (queue, written) = (queue.clone(), written.clone());
            async move {
                let mut rx = queue.lease().ok_or("the queue is held")?;
                loop {
                    tokio::select! {
                        item = rx.recv() => match item {
                            Some(n) => written.lock().unwrap().push(n),
                            None => return Ok(()),
                        },
                        () = stop.requested() => {
                            // Finish what is queued, then end.
                            while let Ok(n) = rx.try_recv() {
                                written.lock().unwrap().push(n);
                            }
                            return Ok(());
                        }
                    }
                }
            }
        }
    });
    let root = SupervisorSpec::new("root")
        .policy(policy())
        .child(spec)
        .start_root(runtime.clone());
    started(&mut events, "root/writer", 1).await;
    // Queued while the tree is asked to stop, before the writer runs again.
    for n in 1..=3 {
        tx.send(n).await.unwrap();
    }
    root.send(StopTree).await.unwrap();

    assert_eq!(*written.lock().unwrap(), [1, 2, 3]);
    let (reason, abnormal) = next_exit(&mut events, "root/writer").await;
    assert_eq!((reason.as_str(), abnormal), ("shutdown", false));
}

#[actix_rt::test]
async fn a_graceful_task_that_panics_is_restarted_like_any_other() {
    tokio::time::pause();
    let runtime = Arc::new(SupervisionRuntime::standalone());
    let mut events = runtime.subscribe();
    let (spec, _) = ChildSpec::graceful_task("writer", |_, mut stop| async move {
        stop.requested().await;
        Ok(())
    });
    let _root = SupervisorSpec::new("root")
        .policy(policy())
        .child(spec)
        .start_root(runtime.clone());
    started(&mut events, "root/writer", 1).await;
    assert!(runtime.inject_panic("root/writer", "injected"));
    let (reason, abnormal) = next_exit(&mut events, "root/writer").await;
    assert_eq!((reason.as_str(), abnormal), ("panic: injected", true));
    started(&mut events, "root/writer", 2).await;
}
