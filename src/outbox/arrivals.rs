//! How accepted messages reach the drains: per account, the chats that got
//! new messages since the drain last looked, and a wake-up.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Notify;

/// What committed for one account since its drain last looked: the chats
/// that got new messages, and a wake-up.
///
/// The drain only needs to read its heads again when a message arrives for
/// a chat it has no head for (a chat with a head has older messages in
/// front of the new one); telling it which chats got messages spares it a
/// scan of the whole queue per accepted batch.
#[derive(Debug, Default)]
pub struct Arrivals {
    chats: Mutex<ArrivedChats>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct ArrivedChats {
    chats: HashSet<String>,
    /// More distinct chats than [`Arrivals::CAPACITY`]: not worth listing.
    many: bool,
}

/// What [`Arrivals::next`] saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrived {
    /// New messages for these chats (canonical references).
    Chats(HashSet<String>),
    /// New messages for too many chats to list.
    Many,
}

impl Arrived {
    /// Whether a chat not in `known` got a message.
    pub fn beyond(&self, mut known: impl FnMut(&str) -> bool) -> bool {
        match self {
            Self::Many => true,
            Self::Chats(chats) => chats.iter().any(|c| !known(c)),
        }
    }
}

impl Arrivals {
    /// Distinct chats remembered between two looks (beyond: [`Arrived::Many`]).
    pub const CAPACITY: usize = 1024;

    /// New messages committed for these chats.
    pub fn note<'a>(&self, chats: impl IntoIterator<Item = &'a str>) {
        {
            let mut arrived = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
            for chat in chats {
                if arrived.many {
                    break;
                }
                if !arrived.chats.contains(chat) {
                    if arrived.chats.len() >= Self::CAPACITY {
                        arrived.chats.clear();
                        arrived.many = true;
                    } else {
                        arrived.chats.insert(chat.to_owned());
                    }
                }
            }
        }
        self.wake.notify_one();
    }

    /// Forgets what arrived so far: the caller is about to read the heads.
    pub fn reset(&self) {
        self.take();
    }

    fn take(&self) -> Option<Arrived> {
        let mut arrived = self.chats.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut arrived.many) {
            return Some(Arrived::Many);
        }
        (!arrived.chats.is_empty()).then(|| Arrived::Chats(std::mem::take(&mut arrived.chats)))
    }

    /// Waits for the next arrivals (since the last `reset` or `next`).
    pub async fn next(&self) -> Arrived {
        loop {
            let woken = self.wake.notified();
            if let Some(arrived) = self.take() {
                return arrived;
            }
            woken.await;
        }
    }
}

/// Each account's [`Arrivals`].
#[derive(Clone, Default)]
pub(super) struct Signals(Arc<Mutex<HashMap<i64, Arc<Arrivals>>>>);

impl Signals {
    pub(super) fn get(&self, account_id: i64) -> Arc<Arrivals> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(account_id)
            .or_default()
            .clone()
    }

    pub(super) fn forget(&self, account_id: i64) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&account_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn arrivals_list_new_chats_until_too_many() {
        let arrivals = Arrivals::default();
        arrivals.note(["me", "@a", "me"]);
        assert_eq!(
            arrivals.next().await,
            Arrived::Chats(["me".to_owned(), "@a".to_owned()].into())
        );
        // Taken: the next look waits for news (a spent wake-up finds none).
        assert!(arrivals.take().is_none());
        let names: Vec<String> = (0..=Arrivals::CAPACITY).map(|i| format!("@c{i}")).collect();
        arrivals.note(names.iter().map(String::as_str));
        let many = arrivals.next().await;
        assert_eq!(many, Arrived::Many);
        assert!(
            many.beyond(|_| true),
            "too many to list: any chat may be new"
        );
        arrivals.note(["@b"]);
        arrivals.reset();
        assert!(arrivals.take().is_none(), "reset forgets");
        let one = Arrived::Chats(["@b".to_owned()].into());
        assert!(!one.beyond(|c| c == "@b"));
        assert!(one.beyond(|c| c == "me"));
    }
}
