//! The account state board and `account.state` events.

use crate::domain::AccountState;
use prometheus::IntGaugeVec;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// The data of an `account.state` event: the account, its new and previous
/// state, and whatever `detail` adds (an object's fields are merged in).
pub fn state_event(
    account_id: i64,
    state: AccountState,
    previous: Option<AccountState>,
    detail: serde_json::Value,
) -> serde_json::Value {
    let mut data = serde_json::json!({
        "account_id": account_id,
        "state": state,
        "previous": previous,
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (data.as_object_mut(), detail) {
        obj.extend(extra);
    }
    data
}

/// Where every account on this node is, for the gauge and for callers that
/// must not wait on an actor to learn it. Cheap to clone.
#[derive(Clone)]
pub struct StateBoard {
    states: Arc<Mutex<HashMap<i64, AccountState>>>,
    gauge: IntGaugeVec,
}

impl StateBoard {
    pub fn new(gauge: IntGaugeVec) -> Self {
        // Every state is exported, zeros included, so dashboards see the series.
        for st in AccountState::ALL {
            gauge.with_label_values(&[st.as_str()]).set(0);
        }
        Self {
            states: Arc::default(),
            gauge,
        }
    }

    pub fn get(&self, account_id: i64) -> Option<AccountState> {
        self.lock().get(&account_id).copied()
    }

    /// Sets the account's state; answers the one it had.
    pub fn set(&self, account_id: i64, state: AccountState) -> Option<AccountState> {
        let previous = self.lock().insert(account_id, state);
        self.moved(previous, Some(state));
        previous
    }

    pub fn remove(&self, account_id: i64) {
        let previous = self.lock().remove(&account_id);
        self.moved(previous, None);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, AccountState>> {
        self.states.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn moved(&self, from: Option<AccountState>, to: Option<AccountState>) {
        if from == to {
            return;
        }
        if let Some(from) = from {
            self.gauge.with_label_values(&[from.as_str()]).dec();
        }
        if let Some(to) = to {
            self.gauge.with_label_values(&[to.as_str()]).inc();
        }
    }
}
