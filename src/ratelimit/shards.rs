//! The key map: [`SHARDS`] independent `Mutex<HashMap<Key, Window>>`,
//! a key's shard chosen by its hash, and several shards locked at once in
//! index order (so decisions over several keys cannot deadlock).

use super::Key;
use super::window::Window;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Independent locks over the key map.
pub(super) const SHARDS: usize = 16;

/// One shard of the key map.
pub(super) type Shard = HashMap<Key, Window>;

/// Locks `m`, ignoring poisoning (a panic mid-decision leaves a valid log).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The sharded key map.
pub(super) struct Shards {
    shards: Vec<Mutex<Shard>>,
    /// Picks a key's shard.
    hasher: RandomState,
}

impl Shards {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
        }
    }

    /// The index of `key`'s shard.
    pub fn of(&self, key: &Key) -> usize {
        // The remainder is below SHARDS, so the cast cannot truncate.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    /// Locks `key`'s shard.
    pub fn lock_key(&self, key: &Key) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.of(key)])
    }

    /// Every shard, unlocked, in index order.
    pub fn all(&self) -> impl Iterator<Item = &Mutex<Shard>> {
        self.shards.iter()
    }

    /// Locks the shards of `keys` in index order.
    pub fn lock_all<'a>(&'a self, keys: &[(&Key, usize)]) -> Locked<'a> {
        let mut indices: Vec<usize> = keys.iter().map(|(_, s)| *s).collect();
        indices.sort_unstable();
        indices.dedup();
        Locked {
            guards: indices
                .into_iter()
                .map(|i| (i, lock(&self.shards[i])))
                .collect(),
        }
    }

    /// `keys` without repeats, each with its shard.
    pub fn with_shards<'k>(&self, keys: &'k [Key]) -> Vec<(&'k Key, usize)> {
        let mut out: Vec<(&Key, usize)> = Vec::with_capacity(keys.len());
        for key in keys {
            if !out.iter().any(|(k, _)| *k == key) {
                out.push((key, self.of(key)));
            }
        }
        out
    }
}

/// Several shards locked at once, in index order.
pub(super) struct Locked<'a> {
    guards: Vec<(usize, MutexGuard<'a, Shard>)>,
}

impl Locked<'_> {
    pub fn shard(&mut self, index: usize) -> &mut Shard {
        let pos = self
            .guards
            .binary_search_by_key(&index, |(i, _)| *i)
            .unwrap_or_else(|_| unreachable!("every key's shard is locked"));
        &mut self.guards[pos].1
    }
}
