//! Packer's build manifest: which AMI a build made in each region, and the labels it brings
//! into the service's catalog through [`AwsImageStore::import`](crate::AwsImageStore::import).
//!
//! Packer's [`manifest` post-processor](https://developer.hashicorp.com/packer/docs/post-processors/manifest)
//! appends one entry per build to a JSON file, and names the run that wrote last:
//!
//! ```json
//! {
//!   "builds": [
//!     {
//!       "name": "web",
//!       "builder_type": "amazon-ebs",
//!       "build_time": 1700000000,
//!       "files": null,
//!       "artifact_id": "us-east-1:ami-0abc,us-west-2:ami-0def",
//!       "packer_run_uuid": "6f1e2a9c-...",
//!       "custom_data": { "git_sha": "4c2d9e1" }
//!     }
//!   ],
//!   "last_run_uuid": "6f1e2a9c-..."
//! }
//! ```
//!
//! ```no_run
//! use std::path::Path;
//!
//! use immutable_aws::packer::PackerManifest;
//! use immutable_aws::{AwsConfig, AwsImageStore};
//! use immutable_core::ServiceName;
//!
//! # async fn import() -> Result<(), immutable_core::Error> {
//! let clients = AwsConfig::from_env().with_region("us-west-2").load().await;
//! let manifest = PackerManifest::from_file(Path::new("packer-manifest.json"))?;
//! let build = manifest.select(None)?; // the last build of the last run
//! let image = AwsImageStore::new(&clients)
//!     .import(
//!         &ServiceName::new("web")?,
//!         &build.ami_for("us-west-2")?,
//!         &build.labels()?,
//!     )
//!     .await?;
//! # let _ = image; Ok(()) }
//! ```
//!
//! Reading checks the file's shape; what a build says (its AMIs, its labels) is checked when
//! asked for, so that a manifest that also lists builds of other builders (a Docker image,
//! say) serves its AMI builds.
//!
//! # Errors
//! Every error is [`Error::InvalidInput`] naming the field (`packer-manifest` for the file
//! itself, `builds[1].artifact_id`, `builds[0].custom_data.git_sha`, ...) and, when the
//! manifest was read from a file, the file; a file that is not JSON is refused with
//! `serde_json`'s message, which gives the line and column.

mod build;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use immutable_core::{Error, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The label naming the build an image was imported from: [`PackerBuild::name`].
pub const BUILD_LABEL: &str = "packer:build";
/// The label naming the Packer run that made the image: [`PackerBuild::packer_run_uuid`].
pub const RUN_LABEL: &str = "packer:run";

/// The field naming the manifest itself in errors.
const MANIFEST: &str = "packer-manifest";

/// A Packer manifest, as its `manifest` post-processor writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackerManifest {
    /// Every build, in the file's order: Packer appends, so the oldest come first.
    pub builds: Vec<PackerBuild>,
    /// The run that wrote last (`last_run_uuid`), when the manifest names one.
    pub last_run_uuid: Option<String>,
    origin: Origin,
}

/// One build of a [`PackerManifest`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PackerBuild {
    /// The build's name (`name`): the source's name in an HCL template, such as `web` for
    /// `source "amazon-ebs" "web"`.
    pub name: String,
    /// The builder (`builder_type`), such as `amazon-ebs`.
    pub builder_type: Option<String>,
    /// When it was built (`build_time`), in seconds since the Unix epoch.
    pub build_time: Option<i64>,
    /// What it made (`artifact_id`): for the `amazon-*` builders, comma-separated
    /// `region:ami-id` pairs, one per region the AMI was copied to.
    pub artifact_id: String,
    /// The run that made it (`packer_run_uuid`).
    pub packer_run_uuid: Option<String>,
    /// The post-processor's `custom_data`, as written (Packer writes strings only).
    pub custom_data: BTreeMap<String, Value>,
    index: usize,
    origin: Origin,
}

/// Where a manifest was read from, named in errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Origin(Option<PathBuf>);

impl Origin {
    /// [`Error::InvalidInput`] naming `field` and, when there is one, the file.
    fn error(&self, field: &str, reason: impl std::fmt::Display) -> Error {
        match &self.0 {
            Some(path) => Error::invalid(field, format!("in `{}`: {reason}", path.display())),
            None => Error::invalid(field, reason.to_string()),
        }
    }

    /// The manifest, for messages: its file, or "the manifest".
    fn name(&self) -> String {
        match &self.0 {
            Some(path) => format!("`{}`", path.display()),
            None => "the manifest".to_owned(),
        }
    }
}

impl PackerManifest {
    /// Reads the manifest at `path`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `packer-manifest` and the path when the file cannot be
    /// read (the I/O error kept as the source) or is not JSON, and as [`parse`](Self::parse)
    /// says for its contents.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let origin = Origin(Some(path.to_owned()));
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid(
                MANIFEST,
                format!(
                    "cannot read `{}`: {e}; give the file Packer's manifest post-processor \
                     writes (its `output`, `packer-manifest.json` by default)",
                    path.display()
                ),
            )
            .with_source(e)
        })?;
        Self::read(&text, origin)
    }

    /// Parses a manifest from its text.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `packer-manifest` when the text is not JSON (with the line
    /// and column) or not an object, `builds` when it has no list of builds, and the field of
    /// a build (`builds[2].artifact_id`, say) that is missing or of the wrong type. A manifest
    /// with no builds is read; [`select`](Self::select) refuses it.
    pub fn parse(text: &str) -> Result<Self> {
        Self::read(text, Origin::default())
    }

    fn read(text: &str, origin: Origin) -> Result<Self> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            let reason = match &origin.0 {
                Some(path) => format!("`{}` is not JSON: {e}", path.display()),
                None => format!("is not JSON: {e}"),
            };
            Error::invalid(MANIFEST, reason).with_source(e)
        })?;
        let Value::Object(top) = doc else {
            return Err(origin.error(
                MANIFEST,
                "is not a Packer manifest: expected an object with `builds` and `last_run_uuid`",
            ));
        };
        let Some(Value::Array(builds)) = top.get("builds") else {
            return Err(origin.error(
                "builds",
                "is missing or not a list: a Packer manifest lists its builds in `builds`",
            ));
        };
        let builds = builds
            .iter()
            .enumerate()
            .map(|(index, build)| PackerBuild::read(index, build, &origin))
            .collect::<Result<_>>()?;
        Ok(PackerManifest {
            builds,
            last_run_uuid: field(&top, "last_run_uuid", "last_run_uuid", &origin)?,
            origin,
        })
    }

    /// The file the manifest was read from; `None` when it was parsed from text.
    pub fn path(&self) -> Option<&Path> {
        self.origin.0.as_deref()
    }

    /// The builds of the last run (those whose `packer_run_uuid` is `last_run_uuid`), in the
    /// file's order; every build when the manifest names no last run.
    pub fn last_run(&self) -> impl Iterator<Item = &PackerBuild> {
        self.builds.iter().filter(|b| match &self.last_run_uuid {
            Some(run) => b.packer_run_uuid.as_ref() == Some(run),
            None => true,
        })
    }

    /// The build to import.
    ///
    /// - `None`: the last build of the last run ([`last_run`](Self::last_run)); the last
    ///   build when the manifest names no last run. When one run made several builds (several
    ///   sources), that is the one Packer finished last: name the build to be sure.
    /// - `Some(name)`: the last build of that name, the newest since Packer appends, whichever
    ///   run made it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `builds` when the manifest has none, `last_run_uuid` when
    /// no build is of the last run, and `build` when no build has the name (listing those there
    /// are).
    pub fn select(&self, build: Option<&str>) -> Result<&PackerBuild> {
        if self.builds.is_empty() {
            return Err(self.origin.error(
                "builds",
                "is empty: no build has been recorded; run `packer build` with the manifest \
                 post-processor",
            ));
        }
        match build {
            None => self.last_run().last().ok_or_else(|| {
                self.origin.error(
                    "last_run_uuid",
                    format!(
                        "`{}` is the run of none of the builds; name the build to import",
                        self.last_run_uuid.as_deref().unwrap_or_default()
                    ),
                )
            }),
            Some(name) => self
                .builds
                .iter()
                .rev()
                .find(|b| b.name == name)
                .ok_or_else(|| {
                    let mut names: Vec<&str> = Vec::new();
                    for b in &self.builds {
                        if !names.contains(&b.name.as_str()) {
                            names.push(&b.name);
                        }
                    }
                    Error::invalid(
                        "build",
                        format!(
                            "no build of {} is named `{name}`; its builds are: {}",
                            self.origin.name(),
                            names.join(", ")
                        ),
                    )
                }),
        }
    }
}

impl PackerBuild {
    fn read(index: usize, build: &Value, origin: &Origin) -> Result<Self> {
        let at = |key: &str| format!("builds[{index}].{key}");
        let Value::Object(build) = build else {
            return Err(origin.error(&format!("builds[{index}]"), "is not an object"));
        };
        let required = |key: &str| -> Result<String> {
            field(build, key, &at(key), origin)?.ok_or_else(|| {
                origin.error(&at(key), "is missing; Packer writes it for every build")
            })
        };
        Ok(PackerBuild {
            name: required("name")?,
            builder_type: field(build, "builder_type", &at("builder_type"), origin)?,
            build_time: field(build, "build_time", &at("build_time"), origin)?,
            artifact_id: required("artifact_id")?,
            packer_run_uuid: field(build, "packer_run_uuid", &at("packer_run_uuid"), origin)?,
            custom_data: field(build, "custom_data", &at("custom_data"), origin)?
                .unwrap_or_default(),
            index,
            origin: origin.clone(),
        })
    }

    /// The field `key` of this build, as errors name it: `builds[<index>].<key>`.
    fn field(&self, key: &str) -> String {
        format!("builds[{}].{key}", self.index)
    }
}

/// The member `key` of `object` as a `T`, `None` when absent or null; a value of another type
/// is refused naming `name`, with serde's account of what was expected.
fn field<T: DeserializeOwned>(
    object: &Map<String, Value>,
    key: &str,
    name: &str,
    origin: &Origin,
) -> Result<Option<T>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|e| origin.error(name, &e).with_source(e)),
    }
}
