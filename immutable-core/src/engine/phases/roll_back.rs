//! The RollingBack phase: route traffic back to the old fleet if it had moved, then detach and
//! terminate the new one.
//!
//! It obeys I1 on the way back: traffic returns to the old fleet only if it has `min_healthy`
//! healthy instances. A rollback that finds it below that does not route back; the deployment
//! stops ([`Phase::Stopped`]) with traffic where it is healthiest and both fleets kept.

use tracing::instrument;

use crate::engine::run::Run;
use crate::{EventKind, FleetKey, Mark, Phase, Result, Routing, Scaling, Side, Stranded, TargetId};

impl Run<'_> {
    /// Routes traffic back to blue if it had moved and blue can take it, then detaches and
    /// terminates green. If blue cannot take it, stops instead ([`Phase::Stopped`]).
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn roll_back(&mut self) -> Result<()> {
        self.activate_blue().await?;
        self.find_green().await?;
        if let Some(target) = self.rec.green.target.clone() {
            let service = self.rec.service().clone();
            let engine = self.engine;
            let routing = self
                .cleanup_read("read routing", || engine.router.routing(&service))
                .await?;
            if routing.weight(&target) > 0
                && let Some(stranded) = self.route_back(&routing, &target).await?
            {
                return self.stop(stranded).await;
            }
            self.cleanup("detach new target", || {
                engine.router.detach(&service, &target)
            })
            .await?;
            self.emit(EventKind::TargetDetached { target });
        }
        if let Some(fleet) = self.rec.green.fleet.clone() {
            let service = self.rec.service().clone();
            let engine = self.engine;
            self.cleanup("terminate new fleet", || {
                engine.fleet.terminate(&service, &fleet)
            })
            .await?;
            self.emit(EventKind::FleetTerminated { fleet });
        }
        self.advance(Phase::RolledBack, None).await?;
        self.emit(EventKind::RolledBack {
            cause: self.rec.cause(),
        });
        Ok(())
    }

    /// Lets blue's own scaling act again, before anything else: it is to serve alone.
    async fn activate_blue(&self) -> Result<()> {
        let (Some(blue), Some(scaling)) = (
            self.rec.blue.as_ref().map(|b| b.fleet.clone()),
            self.engine.scaling.as_deref(),
        ) else {
            return Ok(());
        };
        let service = self.rec.service().clone();
        self.cleanup("activate old fleet's scaling", || {
            scaling.set_scaling(&service, &blue, Scaling::Active)
        })
        .await
    }

    /// Fills in green's fleet and target when the crash came before they were recorded.
    async fn find_green(&mut self) -> Result<()> {
        let service = self.rec.service().clone();
        let engine = self.engine;
        if self.rec.green.fleet.is_none() {
            let key = FleetKey::from(&self.rec.id);
            let fleets = self
                .cleanup_read("list fleets", || engine.fleet.list(&service))
                .await?;
            self.rec.green.fleet = fleets.into_iter().find(|f| f.key == key).map(|f| f.id);
        }
        if let (None, Some(fleet)) = (&self.rec.green.target, &self.rec.green.fleet) {
            let targets = self
                .cleanup_read("list targets", || engine.router.targets(&service))
                .await?;
            self.rec.green.target = targets
                .into_iter()
                .find(|t| &t.fleet == fleet)
                .map(|t| t.id);
        }
        Ok(())
    }

    /// Sends all traffic back to blue if blue has `min_healthy` healthy instances (I1), in one
    /// routing call. Otherwise leaves traffic where it is healthiest (all of it on green if
    /// green has `min_healthy` and traffic is split; as it is if not) and says how things
    /// stand.
    async fn route_back(
        &mut self,
        routing: &Routing,
        green: &TargetId,
    ) -> Result<Option<Stranded>> {
        let service = self.rec.service().clone();
        let engine = self.engine;
        let needed = self.rec.spec.min_healthy;
        let blue = self.rec.blue.as_ref().map(|b| b.target.clone());
        let back = match &blue {
            None => Routing::empty(),
            Some(blue) => {
                let blue_healthy = self.healthy(blue, "read old fleet health").await?;
                self.mark(Mark::Health {
                    side: Side::Blue,
                    healthy: blue_healthy,
                    total: None,
                });
                if blue_healthy < needed as usize {
                    let green_healthy = self.healthy(green, "read new fleet health").await?;
                    self.mark(Mark::Health {
                        side: Side::Green,
                        healthy: green_healthy,
                        total: None,
                    });
                    let mut weight = routing.weight(green);
                    if weight < 100 && green_healthy >= needed as usize {
                        let all = Routing::all_to(green);
                        self.cleanup("route to the healthier fleet", || {
                            engine.router.set_weights(&service, &all)
                        })
                        .await?;
                        self.emit(EventKind::WeightsSet { routing: all });
                        weight = 100;
                    }
                    return Ok(Some(Stranded {
                        blue_healthy,
                        green_healthy,
                        needed,
                        weight,
                    }));
                }
                Routing::all_to(blue)
            }
        };
        self.cleanup("route back", || engine.router.set_weights(&service, &back))
            .await?;
        self.rec.weight = 0;
        self.emit(EventKind::WeightsSet { routing: back });
        Ok(None)
    }

    /// Healthy instances behind a target; a target gone has none.
    async fn healthy(&self, target: &TargetId, operation: &'static str) -> Result<usize> {
        let service = self.rec.service().clone();
        let engine = self.engine;
        match self
            .cleanup_read(operation, || engine.router.health(&service, target))
            .await
        {
            Ok(report) => Ok(report.healthy()),
            Err(e) if e.is_not_found() => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Ends the deployment in [`Phase::Stopped`], keeping both fleets.
    async fn stop(&mut self, stranded: Stranded) -> Result<()> {
        self.rec.weight = stranded.weight;
        self.rec.stranded = Some(stranded.clone());
        self.advance(Phase::Stopped, Some(stranded.to_string()))
            .await?;
        self.emit(EventKind::Stopped {
            cause: self.rec.cause(),
            stranded,
        });
        Ok(())
    }
}
