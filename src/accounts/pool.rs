//! The node's Telegram client slots: at most `telegram.client_pool_size`
//! accounts connected at once, and at most `telegram.max_clients_per_user`
//! of them one user's, so that one user with many accounts cannot leave
//! every other user's accounts waiting.
//!
//! An account takes its owner's share first, then a slot of the node: an
//! account over its owner's share waits on its owner's own accounts to
//! let go, never holding a node slot meanwhile, so it cannot keep another
//! user's account out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore};

/// The node's client slots; cheap to clone.
#[derive(Clone, Debug)]
pub struct ClientPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: Arc<Semaphore>,
    per_user: usize,
    users: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

/// One connected account's slot (its owner's share and the node's); given
/// back when dropped.
#[derive(Debug)]
pub struct ClientSlot {
    _node: OwnedSemaphorePermit,
    _user: OwnedSemaphorePermit,
}

/// Why an account has no slot yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Full {
    /// The owner's accounts hold the owner's whole share.
    UserShare,
    /// Every slot of the node is taken.
    Node,
}

impl Full {
    /// The reason an account in `waiting` shows.
    pub fn reason(self) -> &'static str {
        match self {
            Self::UserShare => "the owner's share of client slots is taken",
            Self::Node => "client pool full",
        }
    }
}

impl ClientPool {
    /// `size` slots on the node, `per_user` of them at most for one user
    /// (0: no share below the node's size).
    pub fn new(size: usize, per_user: usize) -> Self {
        let size = size.max(1);
        let per_user = if per_user == 0 {
            size
        } else {
            per_user.min(size)
        };
        Self {
            inner: Arc::new(Inner {
                node: Arc::new(Semaphore::new(size)),
                per_user,
                users: Mutex::default(),
            }),
        }
    }

    fn share(&self, owner: i64) -> Arc<Semaphore> {
        let mut users = self
            .inner
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users
            .entry(owner)
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.per_user)))
            .clone()
    }

    /// A slot now, or why there is none.
    pub fn try_acquire(&self, owner: i64) -> Result<ClientSlot, Full> {
        let user = self
            .share(owner)
            .try_acquire_owned()
            .map_err(|_| Full::UserShare)?;
        let node = self
            .inner
            .node
            .clone()
            .try_acquire_owned()
            .map_err(|_| Full::Node)?;
        Ok(ClientSlot {
            _node: node,
            _user: user,
        })
    }

    /// Waits for a slot: the owner's share first, then the node's.
    pub async fn acquire(&self, owner: i64) -> Result<ClientSlot, AcquireError> {
        let user = self.share(owner).acquire_owned().await?;
        let node = self.inner.node.clone().acquire_owned().await?;
        Ok(ClientSlot {
            _node: node,
            _user: user,
        })
    }

    /// Slots of the node free now.
    pub fn available(&self) -> usize {
        self.inner.node.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_rt::test]
    async fn one_user_takes_at_most_its_share_and_others_still_connect() {
        let pool = ClientPool::new(4, 2);
        let a1 = pool.try_acquire(1).unwrap();
        let _a2 = pool.try_acquire(1).unwrap();
        assert_eq!(pool.try_acquire(1).unwrap_err(), Full::UserShare);
        // A user over its share holds no node slot while it waits.
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.acquire(1).await }
        });
        let _b1 = pool.try_acquire(2).unwrap();
        let _b2 = pool.try_acquire(2).unwrap();
        assert_eq!(pool.available(), 0);
        assert_eq!(pool.try_acquire(3).unwrap_err(), Full::Node);
        drop(a1);
        waiting.await.unwrap().unwrap();
    }

    #[test]
    fn no_share_means_the_whole_node() {
        let pool = ClientPool::new(3, 0);
        let _slots: Vec<_> = (0..3).map(|_| pool.try_acquire(7).unwrap()).collect();
        assert_eq!(pool.try_acquire(7).unwrap_err(), Full::UserShare);
        assert_eq!(pool.try_acquire(8).unwrap_err(), Full::Node);
    }
}
