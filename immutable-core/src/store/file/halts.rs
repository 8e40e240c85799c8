//! Halts in `halts/<scope key>.json` (`all.json`, `service#<name>.json`), and wave plans in
//! `waves/<id>.json` with an empty marker `waves/open/<id>` while a plan has not ended.
//!
//! A service's halt read probes two files; a probe of a file that does not exist is not
//! counted, so a store without halts reads nothing for them. The open markers are written
//! before a record opens and removed after it ends, so they may name an ended plan (filtered
//! by reading it) but never miss an unfinished one.

use std::fs;
use std::path::PathBuf;

use super::io::{Dir, io_error};
use crate::{
    Error, Halt, HaltScope, ResourceKind, Result, ServiceName, WaveId, WaveRecord,
    check_wave_version,
};

impl Dir {
    fn halt_path(&self, scope: &HaltScope) -> PathBuf {
        self.root
            .join("halts")
            .join(format!("{}.json", scope.key()))
    }

    pub(super) fn set_halt(&self, halt: &Halt) -> Result<()> {
        self.write_json(&self.halt_path(&halt.scope), halt)
    }

    pub(super) fn lift_halt(&self, scope: &HaltScope) -> Result<Option<Halt>> {
        let path = self.halt_path(scope);
        let halt = self.read_json(&path, "halt")?;
        if halt.is_some() {
            self.remove(&path)?;
        }
        Ok(halt)
    }

    pub(super) fn halts(&self, service: Option<&ServiceName>) -> Result<Vec<Halt>> {
        let dir = self.root.join("halts");
        let paths: Vec<PathBuf> = match service {
            Some(s) => vec![
                self.halt_path(&HaltScope::Service(s.clone())),
                self.halt_path(&HaltScope::All),
            ],
            None => self
                .names(&dir)?
                .into_iter()
                .filter(|n| n.ends_with(".json"))
                .map(|n| dir.join(n))
                .collect(),
        };
        let mut halts = Vec::new();
        for path in paths {
            halts.extend(self.read_json::<Halt>(&path, "halt")?);
        }
        Ok(halts)
    }

    fn wave_path(&self, id: &WaveId) -> Result<PathBuf> {
        let stem = id.as_str();
        if stem.is_empty() || !stem.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(Error::invalid("wave", format!("`{stem}` is not a wave id")));
        }
        Ok(self.root.join("waves").join(format!("{stem}.json")))
    }

    fn open_marker(&self, id: &WaveId) -> PathBuf {
        self.root.join("waves").join("open").join(id.as_str())
    }

    pub(super) fn save_wave(&self, mut record: WaveRecord) -> Result<u64> {
        let path = self.wave_path(&record.id)?;
        let stored: Option<WaveRecord> = self.read_json(&path, "wave plan")?;
        check_wave_version(stored.map(|r| r.version), &record)?;
        record.version += 1;
        let marker = self.open_marker(&record.id);
        if !record.state.is_terminal() && !marker.exists() {
            let dir = marker.parent().expect("markers have a parent");
            super::io::create_private_dir_all(dir)?;
            fs::write(&marker, b"").map_err(|e| io_error("cannot write", &marker, e))?;
        }
        self.write_json(&path, &record)?;
        if record.state.is_terminal() && marker.exists() {
            self.remove(&marker)?;
        }
        Ok(record.version)
    }

    pub(super) fn load_wave(&self, id: &WaveId) -> Result<WaveRecord> {
        self.read_json(&self.wave_path(id)?, "wave plan")?
            .ok_or_else(|| Error::not_found(ResourceKind::WavePlan, id.as_str()))
    }

    pub(super) fn unfinished_waves(&self) -> Result<Vec<WaveRecord>> {
        let dir = self.root.join("waves").join("open");
        let mut waves = Vec::new();
        for name in self.names(&dir)? {
            let record = self.load_wave(&WaveId::new(name))?;
            if !record.state.is_terminal() {
                waves.push(record);
            }
        }
        waves.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(waves)
    }
}
