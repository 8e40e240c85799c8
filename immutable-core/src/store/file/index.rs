//! The per-service index of a [`FileStore`](super::FileStore): how many records the service
//! has, its newest id and its unfinished ids, kept beside the records and rebuilt from them
//! whenever it is missing, unreadable or caught disagreeing with them.
//!
//! The index may claim more than is true, never less: a save that opens a record (or adds
//! one) writes the index first and the record second, a save that closes one writes the record
//! first and the index second. So a crash between the two writes leaves an id the index calls
//! unfinished or newest whose record is finished or missing, which the next reader notices
//! (it reads those records anyway) and repairs by a rebuild; it never leaves an unfinished
//! record the index does not name.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::io::Dir;
use crate::store::Retention;
use crate::{DeploymentId, DeploymentRecord, Result, ServiceName, check_version};

const FORMAT: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Index {
    format: u32,
    /// Records of the service (at least; exact after a rebuild or a trim).
    pub(super) records: usize,
    /// The greatest id.
    pub(super) latest: Option<DeploymentId>,
    /// The unfinished ids (a superset of them).
    pub(super) unfinished: BTreeSet<DeploymentId>,
}

impl Dir {
    /// The service's index: read, or rebuilt when missing beside records, or unreadable.
    pub(super) fn index(&self, service: &ServiceName) -> Result<Index> {
        let parsed = self
            .read_bytes(&self.index_path(service))?
            .map(|bytes| serde_json::from_slice::<Index>(&bytes));
        match parsed {
            Some(Ok(index)) if index.format == FORMAT => Ok(index),
            Some(_) => self.rebuild(service),
            None if self.record_ids(service)?.is_empty() => Ok(Index {
                format: FORMAT,
                ..Index::default()
            }),
            None => self.rebuild(service),
        }
    }

    pub(super) fn write_index(&self, service: &ServiceName, index: &Index) -> Result<()> {
        self.write_json(&self.index_path(service), index)
    }

    /// Reads every record of the service and writes its index afresh.
    ///
    /// # Errors
    /// A record that cannot be read or parsed, named: the index cannot be trusted without it.
    pub(super) fn rebuild(&self, service: &ServiceName) -> Result<Index> {
        self.counted_rebuild();
        let ids = self.record_ids(service)?;
        let mut index = Index {
            format: FORMAT,
            records: 0,
            latest: None,
            unfinished: BTreeSet::new(),
        };
        for id in ids {
            let Some(record) = self.read_record(service, &id)? else {
                continue;
            };
            index.records += 1;
            if !record.phase.is_terminal() {
                index.unfinished.insert(id.clone());
            }
            index.latest = Some(id);
        }
        self.write_index(service, &index)?;
        Ok(index)
    }

    /// The service's unfinished records: its index and the records it names.
    pub(super) fn unfinished_of(&self, service: &ServiceName) -> Result<Vec<DeploymentRecord>> {
        let mut index = self.index(service)?;
        let mut rebuilt = false;
        loop {
            let mut open = Vec::with_capacity(index.unfinished.len());
            let mut stale = false;
            for id in &index.unfinished {
                match self.read_record(service, id)? {
                    Some(r) if !r.phase.is_terminal() => open.push(r),
                    _ => stale = true,
                }
            }
            if !stale || rebuilt {
                return Ok(open);
            }
            index = self.rebuild(service)?;
            rebuilt = true;
        }
    }

    /// The service's newest record: its index and one record.
    pub(super) fn latest_of(&self, service: &ServiceName) -> Result<Option<DeploymentRecord>> {
        let index = self.index(service)?;
        let found = match &index.latest {
            Some(id) => self.read_record(service, id)?,
            None if index.records == 0 => return Ok(None),
            None => None,
        };
        match found {
            Some(record) => Ok(Some(record)),
            None => match self.rebuild(service)?.latest {
                Some(id) => self.read_record(service, &id),
                None => Ok(None),
            },
        }
    }

    /// Saves `next` if its version matches, keeping the index in step; returns the saved
    /// record, and the index when the saved record is finished (so that retention may trim).
    pub(super) fn save(
        &self,
        mut next: DeploymentRecord,
    ) -> Result<(DeploymentRecord, Option<Index>)> {
        let service = next.service().clone();
        let path = self.record_path(&service, &next.id)?;
        let stored = self.read_record(&service, &next.id)?;
        check_version(stored.as_ref().map(|r| r.version), &next)?;
        next.version += 1;
        let was_open = stored.as_ref().map(|r| !r.phase.is_terminal());
        let is_open = !next.phase.is_terminal();
        match was_open {
            // Adding or reopening: the index first, so it never misses an unfinished record.
            None | Some(false) if is_open || stored.is_none() => {
                let mut index = self.index(&service)?;
                index.records += usize::from(stored.is_none());
                if index.latest.as_ref().is_none_or(|l| *l < next.id) {
                    index.latest = Some(next.id.clone());
                }
                if is_open {
                    index.unfinished.insert(next.id.clone());
                }
                self.write_index(&service, &index)?;
                self.write_json(&path, &next)?;
                Ok((next, (!is_open).then_some(index)))
            }
            // Closing: the record first, so the index never misses an unfinished record.
            Some(true) if !is_open => {
                self.write_json(&path, &next)?;
                let mut index = self.index(&service)?;
                index.unfinished.remove(&next.id);
                self.write_index(&service, &index)?;
                Ok((next, Some(index)))
            }
            _ => {
                self.write_json(&path, &next)?;
                Ok((next, None))
            }
        }
    }

    /// Deletes the service's finished records older than `succeeded` that lie beyond the
    /// newest kept, once there are a batch of them (a sixteenth of `keep`, at least one), so
    /// that the directory is listed once per batch rather than once per success.
    pub(super) fn trim(
        &self,
        service: &ServiceName,
        mut index: Index,
        retention: &Retention,
        succeeded: &DeploymentId,
    ) -> Result<()> {
        let Some(keep) = retention.kept() else {
            return Ok(());
        };
        if retention.excess(index.records) < trim_batch(keep) {
            return Ok(());
        }
        let ids = self.record_ids(service)?;
        let mut left = ids.len();
        for id in ids.iter().take(retention.excess(ids.len())) {
            if let Some(r) = self.read_record(service, id)?
                && Retention::may_delete(&r, succeeded)
            {
                self.remove(&self.record_path(service, id)?)?;
                left -= 1;
            }
        }
        index.records = left;
        self.write_index(service, &index)
    }
}

/// How far past `keep` a service grows before it is trimmed.
pub(super) fn trim_batch(keep: usize) -> usize {
    (keep / 16).max(1)
}
