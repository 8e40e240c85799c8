//! The shared, deterministic state behind every mock backend.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use immutable_core::{
    FleetId, FleetKey, Image, ImageId, InstanceId, InstanceState, Labels, Result, Scaling,
    ServiceName, tags,
};
use tokio::time::Instant;

use crate::fault::{CallOn, Fault, Matching, Op, Script, take_fault};
use crate::index::Index;
pub(crate) use crate::state::{
    MockFleet, MockImage, MockTarget, Registration, RouteState, State, check_owner, owner,
    ownership_tags,
};

/// Virtual durations of the mock's cloud. Every wait is on tokio's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timings {
    /// From launch to running. Default 30 s.
    pub boot: Duration,
    /// From registration (or boot, if later) to passing health checks. Default 20 s.
    pub health_check: Duration,
    /// How long detaching a target drains it. Default 10 s.
    pub drain: Duration,
    /// How long a weight change takes to take effect. Default zero.
    pub routing_delay: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            boot: Duration::from_secs(30),
            health_check: Duration::from_secs(20),
            drain: Duration::from_secs(10),
            routing_delay: Duration::ZERO,
        }
    }
}

impl Timings {
    /// Everything happens at once: for benches, and tests about logic rather than time.
    pub fn instant() -> Self {
        Timings {
            boot: Duration::ZERO,
            health_check: Duration::ZERO,
            drain: Duration::ZERO,
            routing_delay: Duration::ZERO,
        }
    }
}

/// One call made to the mock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation.
    pub op: Op,
    /// The service it was made for, when it names one.
    pub service: Option<String>,
    /// The resource it was made on (image, fleet or target id; the key of a launch), when it
    /// names one.
    pub resource: Option<String>,
    /// Virtual time since the cloud was created.
    pub at: Duration,
    /// The fault injected into it, if any.
    pub fault: Option<Fault>,
}

/// An in-memory cloud that implements [`ImageStore`](immutable_core::ImageStore),
/// [`Fleet`](immutable_core::Fleet) and [`TrafficRouter`](immutable_core::TrafficRouter) over
/// one shared state. Clones share that state. Ids come from one counter, so runs are
/// deterministic; time is tokio's, so tests under `start_paused` run in virtual time.
#[derive(Debug, Clone)]
pub struct MockCloud {
    pub(crate) state: Arc<Mutex<State>>,
    crashed: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for MockCloud {
    fn default() -> Self {
        Self::new()
    }
}

impl MockCloud {
    /// This cloud as every backend and every capability (preview, scaling control, adoption),
    /// for [`EngineBuilder::backends`](immutable_core::EngineBuilder::backends).
    pub fn backends(&self) -> immutable_core::Backends {
        immutable_core::Backends::from_one(self.clone())
            .with_preview(Arc::new(self.clone()))
            .with_scaling(Arc::new(self.clone()))
            .with_adoption(Arc::new(self.clone()), Arc::new(self.clone()))
    }

    /// An empty cloud with [`Timings::default`].
    pub fn new() -> Self {
        Self::with_timings(Timings::default())
    }

    /// An empty cloud with the given timings.
    pub fn with_timings(timings: Timings) -> Self {
        MockCloud {
            state: Arc::new(Mutex::new(State {
                epoch: Instant::now(),
                timings,
                next_id: 0,
                images: BTreeMap::new(),
                fleets: BTreeMap::new(),
                instances: BTreeMap::new(),
                targets: BTreeMap::new(),
                routes: BTreeMap::new(),
                previews: BTreeMap::new(),
                index: Index::default(),
                scripts: Vec::new(),
                calls: Vec::new(),
                max_instances: None,
                has_preview: true,
                crash_after: None,
            })),
            crashed: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Logs a call and injects its scripted fault, if any.
    pub(crate) fn enter(
        &self,
        op: Op,
        service: Option<&ServiceName>,
    ) -> Result<MutexGuard<'_, State>> {
        self.enter_on(op, service, None)
    }

    /// Logs a call on one resource and injects its scripted fault, if any.
    pub(crate) fn enter_on(
        &self,
        op: Op,
        service: Option<&ServiceName>,
        resource: Option<&str>,
    ) -> Result<MutexGuard<'_, State>> {
        let mut state = self.lock();
        let on = CallOn {
            op,
            service: service.map(ServiceName::as_str),
            resource,
        };
        let fault = take_fault(&mut state.scripts, on);
        let at = state.epoch.elapsed();
        state.calls.push(Call {
            op,
            service: service.map(ToString::to_string),
            resource: resource.map(str::to_owned),
            at,
            fault,
        });
        match fault {
            Some(f) => Err(f.error(op)),
            None => Ok(state),
        }
    }

    /// Registers an image owned by `service` (carrying its ownership tag). Images are created
    /// one virtual second apart, in call order, so "newest" is deterministic.
    ///
    /// # Panics
    /// If `service` is not a valid [`ServiceName`].
    pub fn add_image(&self, service: &str, name: &str) -> ImageId {
        self.add_image_with_labels(service, name, Labels::new())
    }

    /// Registers an image owned by `service` with extra labels.
    ///
    /// # Panics
    /// If `service` is not a valid [`ServiceName`].
    pub fn add_image_with_labels(&self, service: &str, name: &str, mut labels: Labels) -> ImageId {
        let service = ServiceName::new(service).expect("a valid service name");
        labels.insert(tags::SERVICE.into(), service.to_string());
        labels.insert(tags::MANAGED_BY.into(), tags::MANAGED_BY_VALUE.into());
        self.insert_image(name, Some(service), labels)
    }

    /// Registers an image without ownership tags: deployments may launch it by id or name,
    /// but the SDK never labels or retires it.
    pub fn add_foreign_image(&self, name: &str) -> ImageId {
        self.insert_image(name, None, Labels::new())
    }

    fn insert_image(&self, name: &str, service: Option<ServiceName>, labels: Labels) -> ImageId {
        let mut s = self.lock();
        let n = s.next();
        let id = ImageId::new(format!("ami-{n:06}"));
        let image = Image {
            id: id.clone(),
            name: name.to_owned(),
            service,
            labels,
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + n),
        };
        s.insert_image(MockImage {
            image,
            unhealthy: false,
            retired: false,
        });
        id
    }

    /// Launches `count` running instances of `image` without ownership tags, as another team's
    /// fleet would be; returns its id. The SDK must never touch it (I6).
    pub fn add_foreign_fleet(&self, image: &ImageId, count: u32) -> FleetId {
        let mut s = self.lock();
        let n = s.next();
        let id = FleetId::new(format!("fleet-{n:06}"));
        let now = Instant::now() - s.timings.boot;
        let instances: Vec<_> = (0..count).map(|_| s.new_instance(image, now)).collect();
        s.insert_fleet(MockFleet {
            id: id.clone(),
            tags: Labels::new(),
            key: FleetKey::new(format!("foreign-{n}")),
            image: image.clone(),
            capacity: count,
            instances,
            scaling: Scaling::Active,
        });
        id
    }

    /// Makes every instance booted from `image` fail its health checks.
    pub fn boot_unhealthy(&self, image: &ImageId) {
        if let Some(i) = self.lock().images.get_mut(image) {
            i.unhealthy = true;
        }
    }

    /// Terminates one instance, as a hardware failure would.
    pub fn kill_instance(&self, instance: &InstanceId) {
        self.lock()
            .end_instance(instance, InstanceState::Terminated);
    }

    /// Stops one instance: it stays in its fleet but can serve nothing.
    pub fn stop_instance(&self, instance: &InstanceId) {
        self.lock().end_instance(instance, InstanceState::Stopped);
    }

    /// Fails the next `n` calls of `op` (or of the calls it [matches](Matching)) with `fault`.
    pub fn fail_next(&self, op: impl Into<Matching>, n: u32, fault: Fault) {
        self.lock().scripts.push(Script {
            matching: op.into(),
            skip: 0,
            remaining: n,
            fault,
        });
    }

    /// Fails the `nth` call of `op` (or of the calls it [matches](Matching)) from now (1 is the
    /// next one) with `fault`.
    pub fn fail_call(&self, op: impl Into<Matching>, nth: u32, fault: Fault) {
        self.lock().scripts.push(Script {
            matching: op.into(),
            skip: nth.saturating_sub(1),
            remaining: 1,
            fault,
        });
    }

    /// Simulates the caller dying `n` calls from now (1 is the next call): that call takes
    /// effect, then never returns, and [`crashed`](Self::crashed) resolves. Drop the caller's
    /// future then, as a crash would, and resume with a fresh engine. Fires once.
    pub fn crash_after_call(&self, n: usize) {
        let mut s = self.lock();
        s.crash_after = Some(s.calls.len() + n.max(1));
        self.crashed.send_replace(false);
    }

    /// Resolves once the call chosen by [`crash_after_call`](Self::crash_after_call) has taken
    /// effect.
    pub async fn crashed(&self) {
        let mut rx = self.crashed.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Passes a call's result through the crash point.
    pub(crate) async fn finish<T>(&self, result: Result<T>) -> Result<T> {
        let crash = {
            let mut s = self.lock();
            let hit = s.crash_after == Some(s.calls.len());
            if hit {
                s.crash_after = None;
            }
            hit
        };
        if crash {
            self.crashed.send_replace(true);
            std::future::pending::<()>().await;
        }
        result
    }

    /// Removes every scripted fault not yet used.
    pub fn clear_faults(&self) {
        self.lock().scripts.clear();
    }

    /// Removes (or restores) every service's preview entry point: `preview` then answers
    /// [`Error::NotSupported`](immutable_core::Error::NotSupported), as a router without one does.
    pub fn set_preview_supported(&self, supported: bool) {
        self.lock().has_preview = supported;
    }

    /// Limits the live instances of the whole cloud; launches beyond it fail.
    pub fn set_max_instances(&self, max: Option<usize>) {
        self.lock().max_instances = max;
    }

    /// Changes the timings from now on.
    pub fn set_timings(&self, timings: Timings) {
        self.lock().timings = timings;
    }

    /// Every call made so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// How many calls of `op` were made so far.
    pub fn call_count(&self, op: Op) -> usize {
        self.lock().calls.iter().filter(|c| c.op == op).count()
    }

    /// Forgets the call log.
    pub fn clear_calls(&self) {
        self.lock().calls.clear();
    }
}
