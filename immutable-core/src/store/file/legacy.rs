//! Directories of the earlier flat layout (`deployments/<id>.json`), moved to one directory
//! per service.

use std::path::Path;

use super::io::{Dir, io_error};
use crate::{DeploymentRecord, Error, Result};

impl Dir {
    /// Moves every record of the flat layout into its service's directory (an atomic rename
    /// each, so an interrupted move resumes at the next open), then drops the indexes of the
    /// services that received records, to be rebuilt at their next use.
    ///
    /// # Errors
    /// A flat record that cannot be read or parsed, or that exists in both places with
    /// different contents: named, and left where it is.
    pub(super) fn move_flat_records(&self) -> Result<()> {
        for path in self.flat_records()? {
            let record: DeploymentRecord = self
                .read_json(&path, "deployment record")?
                .ok_or_else(|| Error::store(format!("{} vanished", path.display()), None))?;
            let target = self.record_path(record.service(), &record.id)?;
            if let Some(existing) = self.read_json::<DeploymentRecord>(&target, "record")? {
                if existing != record {
                    return Err(Error::store(
                        format!(
                            "{} and {} hold different copies of deployment {}; keep one",
                            path.display(),
                            target.display(),
                            record.id
                        ),
                        None,
                    ));
                }
                remove_if_present(&path)?;
            } else {
                move_into_place(&path, &target)?;
            }
            remove_if_present(&self.index_path(record.service()))?;
        }
        Ok(())
    }
}

fn move_into_place(from: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().expect("record paths have a parent");
    super::io::create_private_dir_all(dir)?;
    std::fs::rename(from, to).map_err(|e| io_error("cannot move", from, e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("cannot sync directory", dir, e))
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error("cannot remove", path, e))
        }
        _ => Ok(()),
    }
}
