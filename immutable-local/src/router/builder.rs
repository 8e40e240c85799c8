//! [`HaproxyRouterBuilder`]: the router's settings, checked, and each service's backends,
//! checked against the names rules and against what HAProxy has.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use immutable_core::{Error, Result, ServiceName};

use super::api::RuntimeApi;
use super::names;
use super::{Backends, CheckSettings, HaproxyRouter, Inner, InstanceAddresses};
use crate::fsutil::create_private_dir_all;

/// Which preview backend a service routes its candidates through.
#[derive(Debug, Clone)]
enum PreviewBackend {
    /// `<service>:preview` if HAProxy has it, else none.
    IfPresent,
    /// This one, which HAProxy must have.
    Named(String),
    /// None: preview steps are skipped.
    Without,
}

/// Builds a [`HaproxyRouter`].
#[derive(Debug)]
#[must_use]
pub struct HaproxyRouterBuilder {
    socket: PathBuf,
    state_dir: Option<PathBuf>,
    services: BTreeMap<String, (String, PreviewBackend)>,
    addresses: Option<Arc<dyn InstanceAddresses>>,
    checks: CheckSettings,
    drain_timeout: Duration,
}

impl HaproxyRouter {
    /// Starts building a router on HAProxy's admin socket.
    pub fn builder(admin_socket: impl Into<PathBuf>) -> HaproxyRouterBuilder {
        HaproxyRouterBuilder {
            socket: admin_socket.into(),
            state_dir: None,
            services: BTreeMap::new(),
            addresses: None,
            checks: CheckSettings {
                interval: Duration::from_millis(500),
                rise: 2,
                fall: 2,
            },
            drain_timeout: Duration::from_secs(30),
        }
    }
}

impl HaproxyRouterBuilder {
    /// Routes `service` through the backend named after it, and its preview steps through
    /// `<service>:preview` when HAProxy has that backend (skipped otherwise), as
    /// [`Haproxy`](crate::Haproxy) generates them.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        let service = service.into();
        self.services
            .insert(service.clone(), (service, PreviewBackend::IfPresent));
        self
    }

    /// Routes `service` through `backend`, with a preview backend or none.
    ///
    /// A preview backend must not be a name a service could have: name it
    /// `<service>:preview` (see [`build`](Self::build)).
    pub fn service_backends(
        mut self,
        service: impl Into<String>,
        backend: impl Into<String>,
        preview: Option<String>,
    ) -> Self {
        let preview = preview.map_or(PreviewBackend::Without, PreviewBackend::Named);
        self.services
            .insert(service.into(), (backend.into(), preview));
        self
    }

    /// The directory of the routing state files. Required.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Where instances listen: usually the [`ProcessFleet`](crate::ProcessFleet). Required.
    pub fn instances(mut self, addresses: impl InstanceAddresses) -> Self {
        self.addresses = Some(Arc::new(addresses));
        self
    }

    /// HAProxy health checks of each server: every `interval` (10 ms to 1 h), `rise` passes
    /// to be up, `fall` failures to be down (each 1 to 100). Default 500 ms, 2, 2. A check may
    /// take up to 2 s to answer (`timeout check`), whatever the interval, so a short interval
    /// does not mark a slow but healthy server down. Values out of range are refused by
    /// [`build`](Self::build), never clamped.
    pub fn health_checks(mut self, interval: Duration, rise: u32, fall: u32) -> Self {
        self.checks = CheckSettings {
            interval,
            rise,
            fall,
        };
        self
    }

    /// How long detach waits for sessions to end before cutting them (at most 1 h). Default
    /// 30 s.
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = timeout;
        self
    }

    /// Checks the settings, the socket and the backends, and builds the router.
    ///
    /// Each service's live backend must exist in HAProxy and be a name no derivation makes
    /// (no `:`); its preview backend, when it has one, must exist and must not be a name a
    /// service could have (`web-preview` could be the live backend of a service named so:
    /// the default is `web:preview`); no backend may serve two services.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `admin_socket` when it is missing or not an HAProxy
    /// admin socket; `service` for a bad name; `backend` or `preview_backend` for a backend
    /// HAProxy lacks, a name the rules above refuse, or one shared by two services;
    /// `health_checks.interval`, `health_checks.rise`, `health_checks.fall` or
    /// `drain_timeout` out of range; `state_dir` or `instances` when unset.
    pub async fn build(self) -> Result<HaproxyRouter> {
        let state_dir = self
            .state_dir
            .ok_or_else(|| Error::invalid("state_dir", "is required: set it on the builder"))?;
        let addresses = self
            .addresses
            .ok_or_else(|| Error::invalid("instances", "is required: set it on the builder"))?;
        check_settings(&self.checks, self.drain_timeout)?;
        let api = RuntimeApi::new(&self.socket);
        api.verify().await?;
        let known = api.backends().await?;
        let services = resolve_backends(self.services, &known)?;
        create_private_dir_all(&state_dir)?;
        Ok(HaproxyRouter {
            inner: Arc::new(Inner {
                api,
                state_dir,
                services,
                addresses,
                checks: self.checks,
                drain_timeout: self.drain_timeout,
                poll: Duration::from_millis(50),
                locks: Mutex::default(),
            }),
        })
    }
}

fn check_settings(c: &CheckSettings, drain: Duration) -> Result<()> {
    let hour = Duration::from_secs(3600);
    let interval = &c.interval;
    if *interval < Duration::from_millis(10) || *interval > hour {
        return Err(Error::invalid(
            "health_checks.interval",
            format!("is {} ms, must be 10 ms to 1 h", interval.as_millis()),
        ));
    }
    for (field, v) in [
        ("health_checks.rise", c.rise),
        ("health_checks.fall", c.fall),
    ] {
        if !(1..=100).contains(&v) {
            return Err(Error::invalid(field, format!("is {v}, must be 1 to 100")));
        }
    }
    if drain > hour {
        return Err(Error::invalid(
            "drain_timeout",
            format!("is {} s, must be at most 1 h", drain.as_secs()),
        ));
    }
    Ok(())
}

/// Each service's backends, checked against the names rules and against what HAProxy has.
fn resolve_backends(
    wanted: BTreeMap<String, (String, PreviewBackend)>,
    known: &[String],
) -> Result<BTreeMap<ServiceName, Backends>> {
    let mut services = BTreeMap::new();
    let mut used: BTreeMap<String, ServiceName> = BTreeMap::new();
    for (name, (live, preview)) in wanted {
        let service = ServiceName::new(name)?;
        let preview = match preview {
            PreviewBackend::IfPresent => {
                Some(names::default_preview(&service)).filter(|p| known.contains(p))
            }
            PreviewBackend::Named(p) => Some(p),
            PreviewBackend::Without => None,
        };
        names::check_backends(&service, &live, preview.as_deref())?;
        let fields = [
            ("backend", Some(&live)),
            ("preview_backend", preview.as_ref()),
        ];
        for (field, backend) in fields {
            let Some(backend) = backend else { continue };
            if !known.contains(backend) {
                return Err(Error::invalid(
                    field,
                    format!("HAProxy has no backend `{backend}` for service `{service}`"),
                ));
            }
            if let Some(other) = used.insert(backend.clone(), service.clone()) {
                return Err(Error::invalid(
                    field,
                    format!("backend `{backend}` would serve both `{other}` and `{service}`"),
                ));
            }
        }
        services.insert(service, Backends { live, preview });
    }
    Ok(services)
}
