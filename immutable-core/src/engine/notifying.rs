//! Notifications from deployments (see [`crate::notify`]): each made with the change it
//! announces and saved in the record's outbox with it, then delivered, and how each delivery
//! went saved in turn.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::run::Run;
use super::{Inner, Phase};
use crate::notify::deliver::deliver_outbox;
use crate::notify::{Notification, Trigger};
use crate::{DeploymentRecord, Result};

impl Inner {
    /// Adds a notification of `trigger` about `rec` as it stands to its outbox, for each
    /// notifier that wants it; it is saved with `rec`'s next save. `detail` tells apart
    /// notifications of one trigger in one deployment (see [`Notification::about`]); one
    /// already in the outbox (a re-run phase) is not added again.
    pub(super) fn queue_notification(
        &self,
        rec: &mut DeploymentRecord,
        trigger: Trigger,
        detail: Option<String>,
        shape: impl FnOnce(Notification) -> Notification,
    ) {
        let names: Vec<&str> = self
            .notifiers
            .iter()
            .filter(|n| n.wants(trigger))
            .map(|n| n.name())
            .collect();
        if names.is_empty() {
            return;
        }
        let n = shape(Notification::about(rec, trigger, detail, self.clock.now()));
        rec.notifications.push(n, names);
    }

    /// Delivers what `rec`'s outbox holds pending, then saves how it went. Call it right after
    /// a save, so that nothing unsaved is announced.
    pub(super) async fn deliver_notifications(&self, rec: &mut DeploymentRecord) -> Result<()> {
        if self.notifiers.is_empty() || !rec.notifications.has_pending() {
            return Ok(());
        }
        if deliver_outbox(&self.notifiers, &mut rec.notifications, self.clock.as_ref()).await {
            self.store.save(rec).await?;
        }
        Ok(())
    }

    /// Delivers what a finished deployment's last runner left pending (it stopped between
    /// its last save and the deliveries), under the service's lease so that two processes do
    /// not both deliver. A service busy with another deployment keeps them for later.
    pub(super) async fn deliver_leftovers(
        &self,
        rec: DeploymentRecord,
    ) -> Result<DeploymentRecord> {
        if self.notifiers.is_empty() || !rec.notifications.has_pending() {
            return Ok(rec);
        }
        let lease = match self.acquire_lease(rec.service(), &rec.id).await {
            Ok(lease) => lease,
            Err(crate::Error::Locked { .. }) => return Ok(rec),
            Err(e) => return Err(e),
        };
        let delivered = async {
            let mut rec = self.store.load(&rec.id).await?;
            self.deliver_notifications(&mut rec).await?;
            Ok(rec)
        }
        .await;
        let _ = self.store.release_lease(&lease).await;
        delivered
    }

    /// The longest reminder lead among notifiers that want approval reminders.
    pub(super) fn reminder_lead(&self) -> Option<Duration> {
        self.notifiers
            .iter()
            .filter(|n| n.wants(Trigger::ApprovalReminder))
            .map(|n| n.reminder_lead())
            .max()
            .filter(|lead| !lead.is_zero())
    }
}

/// What a phase change announces, if anything.
pub(super) fn trigger_of(phase: Phase) -> Option<Trigger> {
    match phase {
        Phase::RollingBack => Some(Trigger::RollbackStarted),
        Phase::RolledBack => Some(Trigger::RolledBack),
        Phase::Stopped => Some(Trigger::Stopped),
        Phase::Done => Some(Trigger::Succeeded),
        _ => None,
    }
}

/// A time as a dedupe-key detail (milliseconds since the epoch).
pub(super) fn detail_of(at: SystemTime) -> String {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
        .to_string()
}

impl Run<'_> {
    /// Queues a notification about this deployment as it stands; saved with the next save.
    pub(super) fn notify(
        &mut self,
        trigger: Trigger,
        detail: Option<String>,
        shape: impl FnOnce(Notification) -> Notification,
    ) {
        self.engine
            .queue_notification(&mut self.rec, trigger, detail, shape);
    }
}
