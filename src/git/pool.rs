//! A small pool of libgit2 handles on one bare repository. `git2::Repository` is `Send` but not
//! `Sync`; a pool lets concurrent reads proceed side by side (and reads go on during a long
//! fetch) while each handle keeps its object cache and open packfiles between calls. Knows
//! nothing of what the handles are used for.
//!
//! Why not open a handle per call: opening re-reads the config and the pack index list, which
//! costs more than a small `read_file`. Why not one handle behind a mutex: a fetch from a slow
//! remote would then block every read of the same repository.

use git2::Repository;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Mutex;

/// Idle handles kept for reuse; more may be open at once, the extra ones are closed on return.
const MAXIMUM_IDLE_HANDLES: usize = 4;

pub(crate) struct HandlePool {
    path: PathBuf,
    idle_handles: Mutex<Vec<Repository>>,
}

impl HandlePool {
    pub(crate) fn new(path: PathBuf, first_handle: Repository) -> HandlePool {
        HandlePool {
            path,
            idle_handles: Mutex::new(vec![first_handle]),
        }
    }

    /// An idle handle, or a newly opened one when all are in use. libgit2 reloads refs from
    /// disk and rescans packs when an object is missing, so a reused handle sees fetched data.
    pub(crate) fn acquire(&self) -> Result<PooledHandle<'_>, git2::Error> {
        let idle_handle = self.lock_idle_handles().pop();
        let handle = match idle_handle {
            Some(handle) => handle,
            None => Repository::open_bare(&self.path)?,
        };
        Ok(PooledHandle {
            pool: self,
            handle: Some(handle),
        })
    }

    fn lock_idle_handles(&self) -> std::sync::MutexGuard<'_, Vec<Repository>> {
        // A panic while the lock was held cannot leave a Vec of handles half-changed.
        self.idle_handles
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A handle borrowed from the pool, given back when dropped.
pub(crate) struct PooledHandle<'pool> {
    pool: &'pool HandlePool,
    handle: Option<Repository>,
}

impl Deref for PooledHandle<'_> {
    type Target = Repository;

    fn deref(&self) -> &Repository {
        self.handle
            .as_ref()
            .expect("a pooled handle is present until it is dropped")
    }
}

impl Drop for PooledHandle<'_> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let mut idle_handles = self.pool.lock_idle_handles();
            if idle_handles.len() < MAXIMUM_IDLE_HANDLES {
                idle_handles.push(handle);
            }
        }
    }
}
