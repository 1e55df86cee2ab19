//! The uploader actor: the supervised owner of upload jobs' bookkeeping.
//!
//! Jobs run inside their requests, because their body is the request's:
//! moving the body to an actor would add a copy and a mailbox hop per chunk
//! for nothing. What needs an owner that outlives any request is the
//! promise that no job row stays `receiving` once no request runs it; this
//! actor keeps it, at each of its starts (a supervisor restart included)
//! and every `uploads.sweep_interval_ms`.

use super::Uploads;
use actix::prelude::*;
use std::time::Duration;

/// A job row younger than this is not swept: its job may not have
/// registered yet.
const GRACE: Duration = Duration::from_secs(5);

pub struct UploaderActor {
    uploads: Uploads,
    every: Duration,
}

impl UploaderActor {
    pub fn new(uploads: Uploads, every: Duration) -> Self {
        Self { uploads, every }
    }

    fn sweep(&self, ctx: &mut Context<Self>) {
        let uploads = self.uploads.clone();
        ctx.spawn(
            async move {
                if let Err(e) = uploads.sweep(GRACE).await {
                    tracing::warn!(error = %e, "sweeping upload jobs failed; trying again later");
                }
            }
            .into_actor(self),
        );
    }
}

impl Actor for UploaderActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.sweep(ctx);
        ctx.run_interval(self.every, |act, ctx| act.sweep(ctx));
    }
}
