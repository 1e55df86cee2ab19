//! The supervisor actor's lifecycle and the messages it answers.

use super::child::ChildExited;
use super::messages::{AddChild, AddChildError, InjectPanic, Ping, RemoveChild, StopTree};
use super::tree::{Phase, Supervisor};
use actix::prelude::*;

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.exit.is_none() {
            self.runtime.root_started(&self.path);
        }
        for idx in 0..self.children.len() {
            self.start_child(idx, ctx);
            if self.phase != Phase::Running {
                break;
            }
        }
    }

    fn stopping(&mut self, ctx: &mut Context<Self>) -> Running {
        if self.children_stopped || self.children.iter().all(|c| c.running.is_none()) {
            return Running::Stop;
        }
        if self.phase != Phase::ShuttingDown {
            let stop = self.begin_shutdown(ctx);
            ctx.spawn(stop.map(|(), _, ctx| ctx.stop()));
        }
        Running::Continue
    }
}

impl Handler<ChildExited> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: ChildExited, ctx: &mut Context<Self>) {
        if let Some(idx) = self.position(msg.id) {
            self.on_exit(idx, msg.generation, msg.reason, ctx);
        }
    }
}

impl Handler<StopTree> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: StopTree, ctx: &mut Context<Self>) -> Self::Result {
        Box::pin(self.begin_shutdown(ctx))
    }
}

impl Handler<Ping> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: Ping, _: &mut Context<Self>) {}
}

impl Handler<InjectPanic> for Supervisor {
    type Result = bool;

    fn handle(&mut self, msg: InjectPanic, _: &mut Context<Self>) -> bool {
        self.runtime.inject_panic(&msg.path, &msg.message)
    }
}

impl Handler<AddChild> for Supervisor {
    type Result = Result<(), AddChildError>;

    fn handle(&mut self, AddChild(spec): AddChild, ctx: &mut Context<Self>) -> Self::Result {
        let dynamic = self.dynamic.as_ref().ok_or(AddChildError::NotDynamic)?;
        {
            let mut list = dynamic.lock();
            if list.iter().any(|c| c.name == spec.name) {
                return Err(AddChildError::Exists);
            }
            list.push(spec.clone());
        }
        // A child being removed under the same name is still stopping; the
        // new one gets its own entry and starts at once (the old one's exit
        // is matched by id, not by name).
        let idx = self.push_child(spec);
        if self.phase == Phase::Running {
            self.start_child(idx, ctx);
        }
        Ok(())
    }
}

impl Handler<RemoveChild> for Supervisor {
    type Result = ResponseActFuture<Self, bool>;

    fn handle(&mut self, RemoveChild(name): RemoveChild, _: &mut Context<Self>) -> Self::Result {
        if let Some(dynamic) = &self.dynamic {
            dynamic.lock().retain(|c| c.name != name);
        }
        let Some(idx) = self
            .children
            .iter()
            .position(|c| c.spec.name == name && !c.removing)
        else {
            return Box::pin(actix::fut::ready(false));
        };
        let child = &mut self.children[idx];
        child.removing = true;
        child.awaiting_restart = false;
        if child.running.is_none() {
            let path = child.path.clone();
            self.children.remove(idx);
            self.runtime.forget(&path);
            return Box::pin(actix::fut::ready(true));
        }
        // Its exit report removes the entry (see on_exit).
        Box::pin(self.stop_children(&[idx]).map(|(), _, _| true))
    }
}
