//! An alert as the router holds it ([`Entry`]), and the notifications one
//! pass gathers ([`Outbox`]).

use crate::alerts::AlertView;
use crate::alerts::channels::Kind;
use crate::entities::alert;
use std::collections::BTreeMap;

/// An alert as the router holds it: memory first, the `alerts` table as
/// soon as it answers.
pub(super) struct Entry {
    pub(super) m: alert::Model,
    /// It has a row (its id is real).
    pub(super) saved: bool,
    /// Memory is ahead of the row.
    pub(super) dirty: bool,
    /// Every channel it reached (its resolution goes to all of them).
    pub(super) notified: Vec<String>,
}

impl Entry {
    pub(super) fn loaded(m: alert::Model) -> Self {
        let notified = serde_json::from_str(&m.notified).unwrap_or_default();
        Self {
            m,
            saved: true,
            dirty: false,
            notified,
        }
    }

    pub(super) fn view(&self) -> AlertView {
        AlertView::from(self.m.clone())
    }
}

/// Notifications gathered in one pass: per (kind, channel), the alerts.
pub(super) type Outbox = BTreeMap<(u8, String), (Kind, Vec<AlertView>)>;

pub(super) fn add(out: &mut Outbox, kind: Kind, channels: &[String], view: &AlertView) {
    for c in channels {
        out.entry((kind as u8, c.clone()))
            .or_insert_with(|| (kind, Vec::new()))
            .1
            .push(view.clone());
    }
}
