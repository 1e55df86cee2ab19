//! The pending sign-ins of this node, in memory: the live client waiting
//! for the next step, its owner, expiry and wrong answers left.

use crate::telegram::{PendingCode, PendingPassword};
use std::collections::HashMap;
use tokio::time::Instant;

/// What a pending sign-in waits for.
pub(super) enum Step {
    Code(Box<dyn PendingCode>),
    Password {
        pending: Box<dyn PendingPassword>,
        hint: Option<String>,
    },
}

impl Step {
    pub(super) fn name(&self) -> &'static str {
        match self {
            Step::Code(_) => "code",
            Step::Password { .. } => "password",
        }
    }
}

pub(super) struct Pending {
    pub(super) owner: i64,
    /// None while a step is being submitted.
    pub(super) step: Option<Step>,
    pub(super) expires: Instant,
    pub(super) attempts_left: u32,
    /// Tells this sign-in apart from a later one for the same account.
    pub(super) generation: u64,
}

/// Why a step could not be taken out of the table.
pub(super) enum TakeRefused {
    NotPending,
    Expired,
    Busy,
    WrongStep { expected: &'static str },
}

/// The pending sign-ins by account id.
#[derive(Default)]
pub(super) struct PendingTable {
    map: HashMap<i64, Pending>,
}

impl PendingTable {
    pub(super) fn len(&self) -> usize {
        self.map.len()
    }

    pub(super) fn contains(&self, account_id: i64) -> bool {
        self.map.contains_key(&account_id)
    }

    /// How many sign-ins `owner` has waiting.
    pub(super) fn count_of(&self, owner: i64) -> usize {
        self.map.values().filter(|p| p.owner == owner).count()
    }

    pub(super) fn insert(&mut self, account_id: i64, pending: Pending) {
        self.map.insert(account_id, pending);
    }

    pub(super) fn remove(&mut self, account_id: i64) -> Option<Pending> {
        self.map.remove(&account_id)
    }

    /// Removes the sign-in if it is still `generation` and no step of it is
    /// being submitted (its expiry).
    pub(super) fn remove_idle(&mut self, account_id: i64, generation: u64) -> Option<Pending> {
        match self.map.get(&account_id) {
            Some(p) if p.generation == generation && p.step.is_some() => {
                self.map.remove(&account_id)
            }
            _ => None,
        }
    }

    /// Takes the pending step out of the table for the duration of a submission.
    pub(super) fn take(
        &mut self,
        owner: i64,
        account_id: i64,
        want: &'static str,
    ) -> Result<(Step, u64), TakeRefused> {
        let Some(p) = self.map.get_mut(&account_id) else {
            return Err(TakeRefused::NotPending);
        };
        if p.owner != owner {
            // Someone else's sign-in answers like no sign-in at all.
            return Err(TakeRefused::NotPending);
        }
        if p.expires <= Instant::now() {
            return Err(TakeRefused::Expired);
        }
        let Some(step) = p.step.take() else {
            return Err(TakeRefused::Busy);
        };
        if step.name() != want {
            let expected = step.name();
            p.step = Some(step);
            return Err(TakeRefused::WrongStep { expected });
        }
        Ok((step, p.generation))
    }

    /// Puts a step back (after a wrong answer) if the sign-in is still the same one.
    pub(super) fn put_back(&mut self, account_id: i64, generation: u64, step: Step) -> Option<u32> {
        let p = self.map.get_mut(&account_id)?;
        if p.generation != generation {
            return None;
        }
        p.attempts_left = p.attempts_left.saturating_sub(1);
        if p.attempts_left == 0 {
            self.map.remove(&account_id);
            return None;
        }
        p.step = Some(step);
        Some(p.attempts_left)
    }

    /// Puts a step back as it was (no wrong answer counted) if the sign-in
    /// is still the same one.
    pub(super) fn restore(&mut self, account_id: i64, generation: u64, step: Step) {
        if let Some(p) = self.map.get_mut(&account_id)
            && p.generation == generation
        {
            p.step = Some(step);
        }
    }

    /// Moves the sign-in on to `step` with `attempts` fresh; false when it
    /// is no longer the same one.
    pub(super) fn advance(
        &mut self,
        account_id: i64,
        generation: u64,
        step: Step,
        attempts: u32,
    ) -> bool {
        match self.map.get_mut(&account_id) {
            Some(p) if p.generation == generation => {
                p.step = Some(step);
                p.attempts_left = attempts;
                true
            }
            _ => false,
        }
    }

    /// Drops the sign-in if it is still `generation`.
    pub(super) fn drop_generation(&mut self, account_id: i64, generation: u64) {
        if self
            .map
            .get(&account_id)
            .is_some_and(|p| p.generation == generation)
        {
            self.map.remove(&account_id);
        }
    }
}
