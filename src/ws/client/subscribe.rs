//! A connection's subscriptions: `subscribe` (the ownership check, then
//! registering with the shard and replaying from the log), the log tasks
//! each subscription runs until it goes live, catch-ups the shard asks
//! for, and ending a subscription.

use super::WsClient;
use crate::auth::Principal;
use crate::ws::close_code;
use crate::ws::frames::account_of;
use crate::ws::replay::{Replay, ReplayResult};
use crate::ws::subscription::{Next, Subscription};
use actix::prelude::*;
use serde_json::Value;
use std::sync::Arc;

/// The actor's side of a subscription.
pub(super) struct Sub {
    shared: Arc<Subscription>,
    /// The task reading the log (or releasing held events), cancelled when
    /// the subscription goes.
    task: Option<SpawnHandle>,
    /// Which task is current: a finished task that is not is ignored.
    generation: u64,
}

impl WsClient {
    pub(super) fn subscribe(
        &mut self,
        ctx: &mut Context<Self>,
        principal: &Principal,
        id: Value,
        topic: String,
        since: Option<i64>,
    ) {
        let Some(account_id) = account_of(&topic) else {
            self.error(ctx, &id, "invalid_topic", "topics are account:<id>", None);
            return;
        };
        if self.subs.contains_key(&topic) {
            self.error(
                ctx,
                &id,
                "already_subscribed",
                "already subscribed to this topic",
                None,
            );
            return;
        }
        if since.is_some_and(|s| s < 0) {
            self.error(
                ctx,
                &id,
                "invalid_offset",
                "since must be an offset (0 or more) or null",
                None,
            );
            return;
        }
        let accounts = self.cx.accounts.clone();
        let user = principal.user_id;
        // The ownership check holds back later frames (an unsubscribe must
        // not overtake its subscribe).
        ctx.wait(
            async move { accounts.owned(user, account_id).await }
                .into_actor(self)
                .map(move |owned, act, ctx| match owned {
                    Ok(_) => act.start_subscription(ctx, id, topic, since),
                    Err(crate::accounts::AccountServiceError::NotFound) => {
                        act.error(ctx, &id, "not_found", "no such account", None);
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "ws subscribe: checking the account failed");
                        act.error(ctx, &id, "internal", "internal error", None);
                    }
                }),
        );
    }

    /// Registers with the hub, then replays from the log.
    fn start_subscription(
        &mut self,
        ctx: &mut Context<Self>,
        id: Value,
        topic: String,
        since: Option<i64>,
    ) {
        if self.closing.is_some() || self.subs.contains_key(&topic) {
            return;
        }
        let Some(shard) = self.shard.clone() else {
            return;
        };
        let held_cap = 4 * self.cx.settings.websocket.send_queue.max(1) as usize;
        let shared = Arc::new(Subscription::new(
            self.outlet.clone(),
            ctx.address().recipient(),
            since.unwrap_or(0),
            held_cap,
        ));
        shard.subscribe(&topic, self.id, shared.clone());
        self.subs.insert(
            topic.clone(),
            Sub {
                shared,
                task: None,
                generation: 0,
            },
        );
        let replay = self.replay(topic.clone());
        self.run(ctx, &topic, replay.subscribe(id, since));
    }

    fn replay(&self, topic: String) -> Replay {
        Replay::new(&self.cx, self.outlet.clone(), topic)
    }

    /// Runs `task` as `topic`'s current log task.
    fn run(
        &mut self,
        ctx: &mut Context<Self>,
        topic: &str,
        task: impl std::future::Future<Output = ReplayResult> + 'static,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let handle = ctx.spawn(
            task.into_actor(self)
                .map(move |res, act, ctx| act.replayed(ctx, generation, res)),
        );
        if let Some(sub) = self.subs.get_mut(topic) {
            if let Some(old) = sub.task.replace(handle) {
                ctx.cancel_future(old);
            }
            sub.generation = generation;
        }
    }

    /// Ends a subscription (its log task too); answers whether there was one.
    pub(super) fn end_subscription(&mut self, ctx: &mut Context<Self>, topic: &str) -> bool {
        let Some(sub) = self.subs.remove(topic) else {
            return false;
        };
        if let Some(task) = sub.task {
            ctx.cancel_future(task);
        }
        if let Some(shard) = &self.shard {
            shard.unsubscribe(topic, self.id);
        }
        true
    }

    /// A log task finished. Live events stop being held back once the log
    /// has been read and what was held meanwhile has been written.
    fn replayed(&mut self, ctx: &mut Context<Self>, generation: u64, res: ReplayResult) {
        let topic = match &res {
            ReplayResult::Closed => {
                self.closing.get_or_insert("client");
                ctx.stop();
                return;
            }
            ReplayResult::Done { topic, .. }
            | ReplayResult::Resync { topic }
            | ReplayResult::Failed { topic, .. } => topic.clone(),
        };
        let Some(sub) = self.subs.get_mut(&topic) else {
            return;
        };
        if sub.generation != generation {
            return;
        }
        sub.task = None;
        let last = match res {
            ReplayResult::Done { last, .. } => last,
            ReplayResult::Resync { .. } => {
                self.end_subscription(ctx, &topic);
                self.close(
                    ctx,
                    close_code::RESYNC_REQUIRED,
                    "resync_required",
                    "offset no longer in history",
                );
                return;
            }
            ReplayResult::Failed { error, .. } => {
                tracing::error!(error = %error, "ws replay: reading the event log failed");
                self.end_subscription(ctx, &topic);
                let message = format!("could not read the history of {topic}; subscribe again");
                self.error(ctx, &Value::Null, "internal", &message, None);
                return;
            }
            ReplayResult::Closed => return,
        };
        let next = sub.shared.read_done(last);
        match next {
            Next::Live => {}
            Next::Pages(from) => {
                let task = self.replay(topic.clone()).pages(from);
                self.run(ctx, &topic, task);
            }
            Next::Release(pending) => {
                let task = self.replay(topic.clone()).release(pending);
                self.run(ctx, &topic, task);
            }
        }
    }

    /// Subscriptions the shard switched to reading the log start reading
    /// it from their last offset (the shard may have missed events).
    pub(super) fn catch_up(&mut self, ctx: &mut Context<Self>) {
        let mut idle = Vec::new();
        for (topic, sub) in &self.subs {
            if sub.task.is_some() {
                // Reading already; the shard asked for once more.
                continue;
            }
            idle.push((topic.clone(), sub.shared.start_reading()));
        }
        for (topic, last) in idle {
            let replay = self.replay(topic.clone());
            self.run(ctx, &topic, replay.pages(last));
        }
    }
}
