//! The documents of the commands that set a service up: `image ...`, `proxy ...`, `init`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

/// `image list`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImagesDoc {
    pub(crate) service: String,
    /// Newest first.
    pub(crate) images: Vec<ImageRow>,
}

/// One image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ImageRow {
    /// `img-...` (local), `sha256:...` (Docker) or `ami-...` (AWS).
    pub(crate) id: String,
    pub(crate) name: String,
    /// RFC 3339, UTC.
    pub(crate) created: String,
    /// The fleets launched from it that still have instances.
    pub(crate) in_use_by: Vec<String>,
    /// Whether a deployment promoted it (the `immutable:promoted` label names which).
    pub(crate) promoted: bool,
    /// Every label, the SDK's ownership tags included.
    pub(crate) labels: BTreeMap<String, String>,
}

/// What an image command did.
#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ImageAction {
    /// `image show`.
    Shown,
    /// `image label`.
    Labelled,
    /// `image retire`.
    Retired,
    /// `image import`: new, or the same content imported before.
    Imported,
}

/// `image show`, `image label`, `image retire`, `image import`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct ImageDoc {
    pub(crate) action: ImageAction,
    pub(crate) service: String,
    pub(crate) image: ImageRow,
    /// Local images: how an instance starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) local: Option<LocalImageDoc>,
    /// `image import --packer-manifest`: the build and region the AMI came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) packer: Option<PackerDoc>,
}

/// What a local image's manifest records.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct LocalImageDoc {
    /// The program and its arguments.
    pub(crate) command: Vec<String>,
    /// The names of the variables every instance starts with (their values may be secrets:
    /// they are in the image's manifest, never printed).
    pub(crate) env: Vec<String>,
    pub(crate) health_path: Option<String>,
    pub(crate) port_var: Option<String>,
    /// SHA-256 of the content.
    pub(crate) digest: String,
}

/// Where an imported AMI came from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct PackerDoc {
    pub(crate) build: String,
    pub(crate) region: String,
}

/// What a proxy command found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProxyState {
    /// `start` started it.
    Started,
    /// It runs (`start` found it running with the same routes, or `status`).
    Running,
    /// `stop` stopped it.
    Stopped,
    /// None runs.
    NotRunning,
}

/// `proxy start`, `proxy status`, `proxy stop`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProxyDoc {
    pub(crate) state: ProxyState,
    pub(crate) pid: Option<u32>,
    /// Give it to the other commands as --haproxy-socket (the default under --root).
    pub(crate) admin_socket: String,
    pub(crate) routes: Vec<ProxyRouteDoc>,
}

/// One service the proxy routes.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct ProxyRouteDoc {
    pub(crate) service: String,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    pub(crate) preview_url: Option<String>,
    pub(crate) health_path: String,
    /// `start`: the servers put back into HAProxy from the router's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) restored: Option<usize>,
}

/// `init`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct InitDoc {
    /// The file written.
    pub(crate) file: String,
    pub(crate) service: String,
    pub(crate) backend: String,
    /// What to run next.
    pub(crate) next: Vec<String>,
}

/// `store migrate`.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct StoreMigrateDoc {
    /// The database, without its password.
    pub(crate) store: String,
    /// The schema of the journal's tables.
    pub(crate) schema: String,
    /// Its version before.
    pub(crate) from: u32,
    /// Its version now.
    pub(crate) to: u32,
    /// The migrations applied, oldest first; empty when it was up to date.
    pub(crate) applied: Vec<MigrationRow>,
}

/// One migration applied.
#[derive(Debug, Serialize, JsonSchema)]
pub(crate) struct MigrationRow {
    pub(crate) version: u32,
    pub(crate) name: String,
}
