//! Operators' commands in `commands/<deployment>/<command id>.json`: created once (a repeated
//! id is refused), listed in id order, which is the order they were given.

use std::fs;
use std::path::PathBuf;

use super::io::{Dir, file_stem, io_error};
use crate::{CommandRecord, DeploymentId, Error, ResourceKind, Result};

impl Dir {
    fn command_dir(&self, deployment: &DeploymentId) -> Result<PathBuf> {
        Ok(self.root.join("commands").join(file_stem(deployment)?))
    }

    pub(super) fn add_command(&self, command: &CommandRecord) -> Result<()> {
        let id = &command.id;
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid(
                "command",
                format!("`{id}` is not a command id"),
            ));
        }
        let path = self
            .command_dir(&command.deployment)?
            .join(format!("{id}.json"));
        if path.exists() {
            return Err(Error::already_exists(ResourceKind::Command, id.clone()));
        }
        self.write_json(&path, command)
    }

    pub(super) fn commands(&self, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        let dir = self.command_dir(deployment)?;
        self.counted_command_poll();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_error("cannot read", &dir, e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut commands = Vec::with_capacity(paths.len());
        for path in paths {
            commands.extend(self.read_json::<CommandRecord>(&path, "command")?);
        }
        Ok(commands)
    }
}
