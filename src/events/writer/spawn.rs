//! How a topic's writer starts: as a task child of the `event-writers`
//! dynamic supervisor (`root/event-writers/<topic>`), restarted after a
//! panic with its queue and its batch in hand ([`Backlog`]), and told to
//! finish what is queued when the tree stops. Without a supervision tree
//! (tools, unit tests), or if the supervisor refuses it, as a plain task.

use super::EventLogInner;
use super::commit::{Append, Backlog, run_writer};
use crate::supervisor::{AddChild, ChildSpec, Handover, Lease, RemoveChild, Restart, StopRequest};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Starts the writer of `topic`, which drains `rx`.
pub(super) fn start(inner: &Arc<EventLogInner>, topic: Arc<str>, rx: mpsc::Receiver<Append>) {
    let backlog = Handover::new(Backlog::new(rx));
    let Some(supervisor) = inner.supervisor.get().cloned() else {
        run_plain(inner, topic, backlog);
        return;
    };
    let name = topic.to_string();
    let spec = {
        let (inner, topic, backlog) = (inner.clone(), topic.clone(), backlog.clone());
        let supervisor = supervisor.clone();
        ChildSpec::graceful_task(name.clone(), move |_, stop| {
            let (inner, topic, backlog) = (inner.clone(), topic.clone(), backlog.clone());
            let (supervisor, name) = (supervisor.clone(), name.clone());
            async move {
                let mut lease = backlog.lease().ok_or("the topic's queue is held")?;
                let stopping = stop.clone();
                write(&inner, &topic, &mut lease, Some(stop)).await;
                if !stopping.is_requested() {
                    // Every sender is gone and the queue is empty: the topic
                    // is done for good, and its child is forgotten.
                    if let Some(addr) = supervisor.addr() {
                        addr.do_send(RemoveChild(name));
                    }
                }
                Ok(())
            }
        })
        .0
        .restart(Restart::Transient)
    };
    let (runtime, inner) = (inner.runtime.clone(), inner.clone());
    runtime.spawn(async move {
        let added = match supervisor.ready().await {
            Ok(addr) => matches!(addr.send(AddChild(spec)).await, Ok(Ok(()))),
            Err(_) => false,
        };
        if !added {
            tracing::warn!(
                topic = &*topic,
                "the event writers' supervisor did not take the topic's writer; running it unsupervised"
            );
            run_plain(&inner, topic, backlog);
        }
    });
}

async fn write(
    inner: &EventLogInner,
    topic: &Arc<str>,
    lease: &mut Lease<Backlog>,
    stop: Option<StopRequest>,
) {
    run_writer(
        inner.db.clone(),
        inner.bus.clone(),
        inner.metrics.clone(),
        topic.clone(),
        lease,
        stop,
    )
    .await;
}

fn run_plain(inner: &Arc<EventLogInner>, topic: Arc<str>, backlog: Handover<Backlog>) {
    let (runtime, inner) = (inner.runtime.clone(), inner.clone());
    runtime.spawn(async move {
        if let Some(mut lease) = backlog.lease() {
            write(&inner, &topic, &mut lease, None).await;
        }
    });
}
