//! [`SupervisorSpec`]: everything needed to start a supervisor, as the
//! root or as a child of another.

use super::child::{ChildRef, ChildSpec};
use super::messages::{DynamicChildren, Intensity, SUPERVISOR_SHUTDOWN_TIMEOUT};
use super::tree::Supervisor;
use super::{Strategy, SupervisionPolicy, SupervisionRuntime};
use actix::prelude::*;
use std::sync::Arc;

/// Everything needed to start a supervisor, as root or as a child.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    pub(crate) name: String,
    pub(crate) strategy: Strategy,
    pub(crate) policy: SupervisionPolicy,
    pub(crate) intensity: Intensity,
    pub(crate) children: Vec<ChildSpec>,
    pub(crate) dynamic: Option<DynamicChildren>,
}

impl SupervisorSpec {
    /// A one_for_one supervisor with the default policy and no children.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            strategy: Strategy::OneForOne,
            policy: SupervisionPolicy::default(),
            intensity: Intensity::Supervisor,
            children: Vec::new(),
            dynamic: None,
        }
    }

    /// Accept children at run time ([`AddChild`], [`RemoveChild`]); they are
    /// started after the static ones. Returns the shared list.
    pub fn dynamic(mut self) -> (Self, DynamicChildren) {
        let list = DynamicChildren::default();
        self.dynamic = Some(list.clone());
        (self, list)
    }

    pub fn intensity(mut self, intensity: Intensity) -> Self {
        self.intensity = intensity;
        self
    }

    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    pub fn policy(mut self, policy: SupervisionPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Add a child; children start in the order they are added.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec);
        self
    }

    /// Start as the root of a tree. When a root gives up it stays alive, stops
    /// its children and records the failure in the runtime (the service then
    /// reports unhealthy).
    pub fn start_root(self, runtime: Arc<SupervisionRuntime>) -> Addr<Supervisor> {
        super::install_panic_hook();
        let path = self.name.clone();
        Supervisor::new(self, path, runtime, None).start()
    }

    /// Run this supervisor as a child of another: when it gives up it exits
    /// abnormally and its parent's policy applies.
    pub fn into_child(self, runtime: Arc<SupervisionRuntime>) -> (ChildSpec, ChildRef<Supervisor>) {
        let name = self.name.clone();
        let (spec, child) = ChildSpec::new(name, move |cctx| {
            Supervisor::new(
                self.clone(),
                cctx.path.clone(),
                runtime.clone(),
                Some(cctx.exit.clone()),
            )
        });
        (spec.shutdown_timeout(SUPERVISOR_SHUTDOWN_TIMEOUT), child)
    }
}
