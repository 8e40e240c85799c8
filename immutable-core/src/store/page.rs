//! Pages of a service's history, and how many old records a store keeps.

use crate::{DeploymentId, DeploymentRecord, Phase, Result};

/// Which page of a service's history to read: at most `limit` records, newest first, older
/// than `before` (from the newest, without it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Page {
    /// At most this many records, 1 to [`Page::MAX_LIMIT`].
    pub limit: usize,
    /// Only records older than this one (whose id is smaller).
    pub before: Option<DeploymentId>,
}

impl Page {
    /// The largest page a store is asked to read at once.
    pub const MAX_LIMIT: usize = 1_000;

    /// The newest `limit` records.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `limit` when it is 0 or above [`Page::MAX_LIMIT`].
    pub fn first(limit: usize) -> Result<Self> {
        let page = Page {
            limit,
            before: None,
        };
        page.check()?;
        Ok(page)
    }

    /// Refuses a page whose `limit` (a public field, so it may have been changed since
    /// [`first`](Self::first)) is 0 or above [`Page::MAX_LIMIT`], naming `limit`. Stores call
    /// it before they read.
    ///
    /// # Errors
    /// [`Error::InvalidInput`](crate::Error::InvalidInput) naming `limit`.
    pub fn check(&self) -> Result<()> {
        crate::limits::count("limit", self.limit, 1, Self::MAX_LIMIT)
    }

    /// This page's length, for the records older than `id`.
    pub fn before(self, id: &DeploymentId) -> Self {
        Page {
            before: Some(id.clone()),
            ..self
        }
    }
}

/// A page of history, newest first, and the page after it if there is more.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HistoryPage {
    /// The records, newest first.
    pub records: Vec<DeploymentRecord>,
    /// The next (older) page, when older records exist.
    pub next: Option<Page>,
}

impl HistoryPage {
    /// A page from `records`, which hold the records older than `page.before`, newest first,
    /// and at least one more than the page holds when there is more: the page takes
    /// `page.limit` of them and points past the last.
    pub fn from_newest(mut records: Vec<DeploymentRecord>, page: &Page) -> Self {
        let more = records.len() > page.limit;
        records.truncate(page.limit);
        let next = match records.last() {
            Some(last) if more => Some(page.clone().before(&last.id)),
            _ => None,
        };
        HistoryPage { records, next }
    }
}

/// How many records of each service a store keeps.
///
/// When a save records a deployment's success ([`Phase::Done`]), the store deletes that
/// service's finished records older than it which lie beyond the newest `keep` records.
/// Unfinished records are never deleted, and neither is the newest succeeded record (a
/// rollback redeploys from it): it is the one just saved, or newer still. A service whose
/// deployments keep failing is trimmed at its next success. Stores may trim in batches, so a
/// service can briefly hold a few more than `keep` (each store documents by how many).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    keep: Option<usize>,
}

impl Retention {
    /// The newest records of a service kept by default.
    pub const DEFAULT_KEEP: usize = 1_000;

    /// Keep the newest `n` records of each service (at least 1).
    pub fn keep(n: usize) -> Self {
        Retention {
            keep: Some(n.max(1)),
        }
    }

    /// Never delete a record.
    pub fn keep_all() -> Self {
        Retention { keep: None }
    }

    /// How many records of a service are kept; `None` for all.
    pub fn kept(&self) -> Option<usize> {
        self.keep
    }

    /// How many of a service's `total` records lie beyond the newest kept.
    pub fn excess(&self, total: usize) -> usize {
        self.keep.map_or(0, |keep| total.saturating_sub(keep))
    }

    /// Whether saving `record` may trim its service: it records a success.
    pub fn trims_after(&self, record: &DeploymentRecord) -> bool {
        self.keep.is_some() && record.phase == Phase::Done
    }

    /// Whether `candidate`, one of the records beyond the newest kept, may be deleted now
    /// that `succeeded` was saved as done: it is finished and older.
    pub fn may_delete(candidate: &DeploymentRecord, succeeded: &DeploymentId) -> bool {
        candidate.phase.is_terminal() && &candidate.id < succeeded
    }
}

impl Default for Retention {
    /// [`Retention::DEFAULT_KEEP`] records per service.
    fn default() -> Self {
        Retention::keep(Self::DEFAULT_KEEP)
    }
}
