//! The catalog: one JSON file per imported image, `<root>/images/<service>/<hex>.json`,
//! holding its id, name, labels and creation time. Docker's own image labels are fixed at
//! build time, so the labels a deployment writes (`immutable:promoted`, a channel) live here.
//! Every change holds the service's lock (`<root>/images/.<service>.lock`).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use immutable_core::{Error, Image, ImageId, Labels, Result, ServiceName, tags};
use immutable_local::state_files::{
    create_private_dir_all, lock_file, read_json, write_json_atomic,
};
use serde::{Deserialize, Serialize};

/// One imported image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub(crate) id: ImageId,
    pub(crate) service: ServiceName,
    pub(crate) name: String,
    pub(crate) labels: Labels,
    pub(crate) created_at: SystemTime,
}

impl Entry {
    /// The image as the core sees it, ownership tags among its labels.
    pub(crate) fn image(&self) -> Image {
        let mut labels = self.labels.clone();
        labels.insert(tags::SERVICE.to_owned(), self.service.to_string());
        labels.insert(
            tags::MANAGED_BY.to_owned(),
            tags::MANAGED_BY_VALUE.to_owned(),
        );
        Image {
            id: self.id.clone(),
            name: self.name.clone(),
            service: Some(self.service.clone()),
            labels,
            created_at: self.created_at,
        }
    }
}

/// The 64 hex digits of an image id `sha256:<hex>`, or an error naming `field`.
pub(crate) fn digest_of<'a>(id: &'a str, field: &str) -> Result<&'a str> {
    id.strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "`{id}` is not a Docker image id: expected sha256: and 64 lowercase hex \
                     digits, as `docker image inspect --format '{{{{.Id}}}}'` prints"
                ),
            )
        })
}

/// The catalog under a store root.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    dir: PathBuf,
}

impl Catalog {
    pub(crate) fn open(root: &Path) -> Result<Self> {
        let dir = root.join("images");
        create_private_dir_all(&dir)?;
        Ok(Catalog { dir })
    }

    fn service_dir(&self, service: &ServiceName) -> PathBuf {
        self.dir.join(service.as_str())
    }

    fn path(&self, service: &ServiceName, id: &ImageId) -> Result<PathBuf> {
        let hex = digest_of(id.as_str(), "image")?;
        Ok(self.service_dir(service).join(format!("{hex}.json")))
    }

    /// Holds the service's catalog lock until dropped.
    pub(crate) fn lock(&self, service: &ServiceName) -> Result<std::fs::File> {
        lock_file(&self.dir.join(format!(".{service}.lock")))
    }

    /// The service's entry for `id`.
    pub(crate) fn get(&self, service: &ServiceName, id: &ImageId) -> Result<Option<Entry>> {
        let entry: Option<Entry> = read_json(&self.path(service, id)?, "image catalog entry")?;
        Ok(entry.filter(|e| &e.service == service && &e.id == id))
    }

    /// The service that imported `id`, other than `except`.
    pub(crate) fn owner(&self, id: &ImageId, except: &ServiceName) -> Result<Option<Entry>> {
        let hex = digest_of(id.as_str(), "image")?;
        let Ok(dirs) = std::fs::read_dir(&self.dir) else {
            return Ok(None);
        };
        for dir in dirs.flatten() {
            let Some(name) = dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(service) = ServiceName::new(name) else {
                continue;
            };
            if &service == except {
                continue;
            }
            let path = dir.path().join(format!("{hex}.json"));
            if let Some(entry) = read_json::<Entry>(&path, "image catalog entry")?
                && entry.service == service
                && &entry.id == id
            {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }

    /// Every entry of the service.
    pub(crate) fn list(&self, service: &ServiceName) -> Result<Vec<Entry>> {
        let dir = self.service_dir(service);
        let Ok(files) = std::fs::read_dir(&dir) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        for file in files.flatten() {
            let name = file.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            if let Some(entry) = read_json::<Entry>(&file.path(), "image catalog entry")?
                && &entry.service == service
            {
                entries.push(entry);
            }
        }
        Ok(entries)
    }

    /// Writes an entry (the caller holds the lock).
    pub(crate) fn put(&self, entry: &Entry) -> Result<()> {
        create_private_dir_all(&self.service_dir(&entry.service))?;
        write_json_atomic(&self.path(&entry.service, &entry.id)?, entry)
    }

    /// Removes an entry (the caller holds the lock).
    pub(crate) fn remove(&self, service: &ServiceName, id: &ImageId) -> Result<()> {
        let path = self.path(service, id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Provider {
                message: format!("cannot remove {}: {e}", path.display()),
                source: Some(Box::new(e)),
            }),
        }
    }
}

/// The tag every host gives an imported image, so that `docker image prune` never takes it:
/// `immutable-sdk:<service>.<first 16 hex digits>`. Split from the right, it names one
/// service and image.
pub(crate) fn pin_tag(service: &ServiceName, id: &ImageId) -> Result<(String, String)> {
    let hex = digest_of(id.as_str(), "image")?;
    Ok((PIN_REPO.to_owned(), format!("{service}.{}", &hex[..16])))
}

/// The repository of [`pin_tag`]s.
pub(crate) const PIN_REPO: &str = "immutable-sdk";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids_are_checked() {
        let good = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(digest_of(&good, "image").unwrap().len(), 64);
        for bad in [
            "",
            "sha256:",
            "img-0",
            &format!("sha256:{}", "AB".repeat(32)),
        ] {
            match digest_of(bad, "image") {
                Err(Error::InvalidInput { field, .. }) => assert_eq!(field, "image"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn entries_round_trip_and_stay_in_their_service() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::open(dir.path()).unwrap();
        let web = ServiceName::new("web").unwrap();
        let billing = ServiceName::new("billing").unwrap();
        let id = ImageId::new(format!("sha256:{}", "1".repeat(64)));
        let entry = Entry {
            id: id.clone(),
            service: web.clone(),
            name: "web-v1".into(),
            labels: Labels::from([("channel".into(), "beta".into())]),
            created_at: SystemTime::UNIX_EPOCH,
        };
        catalog.put(&entry).unwrap();
        assert_eq!(catalog.get(&web, &id).unwrap(), Some(entry.clone()));
        assert_eq!(catalog.get(&billing, &id).unwrap(), None);
        assert_eq!(catalog.owner(&id, &billing).unwrap(), Some(entry.clone()));
        assert_eq!(catalog.owner(&id, &web).unwrap(), None);
        let image = entry.image();
        assert_eq!(
            image.labels.get(tags::SERVICE).map(String::as_str),
            Some("web")
        );
        catalog.remove(&web, &id).unwrap();
        assert!(catalog.list(&web).unwrap().is_empty());
    }
}
