//! The arguments of the commands that set a service up: `image ...`, `proxy ...`, `init`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde::Deserialize;

use super::{BackendArgs, BackendChoice, BackendKind, DockerFlags, LocalFlags};

/// `immutable image ...`: the service's images.
#[derive(Debug, Subcommand)]
pub(crate) enum ImageCommand {
    /// The service's images, newest first: id, name, created, the fleets that use each,
    /// whether it was promoted, its labels.
    List {
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// One image: an id (img-..., sha256:..., ami-...) or a name.
    Show {
        /// The image's id or name.
        image: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Add labels (key=value) to an image.
    Label {
        /// The image's id or name.
        image: String,
        /// Labels, as key=value; keys starting with `immutable:` are the SDK's (only
        /// `immutable:promoted` may be set).
        #[arg(required = true, value_name = "KEY=VALUE")]
        labels: Vec<String>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Retire (delete) an image; refused while a fleet uses it.
    Retire {
        /// The image's id or name.
        image: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Bring an image in: on the local backend a directory and the command that starts one
    /// instance; on Docker an image a host has (--image) or a `docker save` archive
    /// (--archive); on AWS the AMIs of a Packer manifest, or one AMI.
    Import(Box<ImportArgs>),
}

/// `image import`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ImportArgs {
    /// Local: the artifact directory to import (copied, read-only, addressed by content).
    #[arg(value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Local and Docker: the image's name, unique within the service (v3, say).
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Local: the program and its arguments that start one instance, split into words like a
    /// shell would (quotes group) but never run by one. A program with a `/` is inside the
    /// image (`./server`); a bare name is looked up on PATH. It listens on 127.0.0.1:$PORT.
    #[arg(long, value_name = "COMMAND")]
    pub(crate) command: Option<String>,
    /// Local: a variable every instance starts with (repeatable).
    #[arg(long, value_name = "NAME=VALUE")]
    pub(crate) env: Vec<String>,
    /// Local: the app's health check path, recorded in the image for people and tools
    /// (HAProxy checks the path of its configuration: `health_path` in `[proxy]`).
    #[arg(long, value_name = "PATH")]
    pub(crate) health_path: Option<String>,
    /// Local: a second variable that holds the port, for an app that does not read PORT.
    #[arg(long, value_name = "NAME")]
    pub(crate) port_var: Option<String>,
    /// AWS: the manifest Packer's `manifest` post-processor wrote.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dir", "ami"])]
    pub(crate) packer_manifest: Option<PathBuf>,
    /// AWS: which build of the manifest (its `name`); default the last build of the last run.
    #[arg(long, value_name = "NAME", requires = "packer_manifest")]
    pub(crate) build: Option<String>,
    /// AWS: one AMI to bring in.
    #[arg(long, value_name = "AMI", conflicts_with = "dir")]
    pub(crate) ami: Option<String>,
    /// Docker: an image a host has, by id (sha256:..., as `docker build -q` prints) or by
    /// reference (web:v2); it is copied to the other hosts.
    #[arg(long, value_name = "REF", conflicts_with_all = ["dir", "ami", "packer_manifest", "archive"])]
    pub(crate) image: Option<String>,
    /// Docker: a `docker save` archive of one image, loaded into the first host and copied
    /// to the others.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dir", "ami", "packer_manifest"])]
    pub(crate) archive: Option<PathBuf>,
    /// A label to start with (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) label: Vec<String>,
    #[command(flatten)]
    pub(crate) backend: BackendArgs,
}

/// `immutable proxy ...`: an HAProxy run for the local and Docker backends under
/// `<root>/proxy`.
#[derive(Debug, Subcommand)]
pub(crate) enum ProxyCommand {
    /// Write HAProxy's configuration for the services, start it in the background and put
    /// back the routing it had; nothing is done when it runs with the same routes.
    Start(ProxyStartArgs),
    /// Whether the proxy runs: its pid, socket and entry points.
    Status(ProxyArgs),
    /// Stop the proxy; its instances keep running, unrouted, until it starts again.
    Stop(ProxyArgs),
}

/// Where the proxy lives, and (on Docker) the hosts whose containers `start` routes again.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProxyArgs {
    #[command(flatten)]
    pub(crate) choice: BackendChoice,
    #[command(flatten)]
    pub(crate) local: LocalFlags,
    #[command(flatten)]
    pub(crate) docker: DockerFlags,
}

/// `proxy start`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProxyStartArgs {
    /// A live entry point on 127.0.0.1: `PORT` for the --service, or `SERVICE=PORT`
    /// (repeatable). Default: `port` in `[proxy]` of the service file.
    #[arg(long, value_name = "[SERVICE=]PORT")]
    pub(crate) port: Vec<String>,
    /// A preview entry point, as --port. Default (when --port is not given either):
    /// `preview_port` in `[proxy]`.
    #[arg(long, value_name = "[SERVICE=]PORT")]
    pub(crate) preview_port: Vec<String>,
    /// What HAProxy's health checks request. Default: `health_path` in `[proxy]`, else
    /// `/health`.
    #[arg(long, value_name = "PATH")]
    pub(crate) health_path: Option<String>,
    #[command(flatten)]
    pub(crate) at: ProxyArgs,
}

/// The `[proxy]` table of a local or Docker service file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ProxyTable {
    pub(crate) port: Option<u16>,
    pub(crate) preview_port: Option<u16>,
    pub(crate) health_path: Option<String>,
}

/// `init`.
#[derive(Debug, Clone, Args)]
pub(crate) struct InitArgs {
    /// The backend the service runs on.
    #[arg(long, value_enum)]
    pub(crate) backend: BackendKind,
    /// Where to write it. Default `<service>.toml`.
    #[arg(long, value_name = "FILE")]
    pub(crate) file: Option<PathBuf>,
    /// Local and Docker: the store root of images, fleets, the journal and the proxy.
    /// Default `./.immutable` (written as an absolute path).
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// Local and Docker: the live entry point's port; the preview entry point takes the next
    /// one. Default 8080.
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Replace the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
}
