//! What a backend has read and keeps, shared by its clones: the ownership tags of target
//! groups and of images (set once, so read once), and the instance ids of fleets.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A map behind one lock, shared by the clones that hold it.
#[derive(Debug)]
pub(crate) struct Memory<K, V>(Arc<Mutex<HashMap<K, V>>>);

impl<K, V> Clone for Memory<K, V> {
    fn clone(&self) -> Self {
        Memory(Arc::clone(&self.0))
    }
}

impl<K, V> Default for Memory<K, V> {
    fn default() -> Self {
        Memory(Arc::new(Mutex::new(HashMap::new())))
    }
}

impl<K: Eq + Hash, V: Clone> Memory<K, V> {
    fn map(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `value` for `key`, replacing what was kept.
    pub(crate) fn keep(&self, key: K, value: V) {
        self.map().insert(key, value);
    }

    /// Forgets `key`.
    pub(crate) fn forget(&self, key: &K) {
        self.map().remove(key);
    }

    /// What is kept for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.map().get(key).cloned()
    }
}
