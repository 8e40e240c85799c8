//! The Retire phase: detach (drain) and terminate the old fleet and, at the same time, mark
//! the image promoted and apply image retention.

use std::collections::BTreeSet;

use tracing::instrument;

use crate::engine::record::Blue;
use crate::engine::run::Run;
use crate::service::tags;
use crate::{EventKind, Image, ImageId, Labels, Phase, Result, ServiceName};

impl Run<'_> {
    /// Detaches and terminates blue while, at the same time, the image is marked promoted and
    /// retention applied: traffic is all on green already, and neither waits for the other.
    /// What each got done is recorded even when the other failed.
    #[instrument(skip_all, fields(deployment = %self.rec.id, service = %self.rec.service()))]
    pub(in crate::engine) async fn retire(&mut self) -> Result<()> {
        let service = self.rec.service().clone();
        if self.rec.previewed
            && let Some(preview) = self.engine.preview.as_deref()
        {
            match self
                .cleanup("clear preview", || preview.preview(&service, None))
                .await
            {
                Ok(_) | Err(crate::Error::NotSupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let blue = self.rec.blue.clone();
        let (blue_retired, (images, tidied)) = futures::join!(
            self.retire_blue(&service, blue.as_ref()),
            self.tidy_images(&service)
        );
        for image in images {
            if !self.rec.retired.images.contains(&image) {
                self.rec.retired.images.push(image);
            }
        }
        if let (Ok(()), Some(blue)) = (&blue_retired, blue)
            && !self.rec.retired.fleets.contains(&blue.fleet)
        {
            self.rec.retired.fleets.push(blue.fleet);
            self.rec.retired.targets.push(blue.target);
        }
        blue_retired?;
        tidied?;
        self.advance(Phase::Done, None).await?;
        let fleet = self.green_fleet().map_err(|_| {
            crate::Error::store(
                format!("the record of deployment {} has no new fleet", self.rec.id),
                None,
            )
        })?;
        self.emit(EventKind::Completed {
            fleet,
            image: self.rec.image.id.clone(),
        });
        Ok(())
    }

    /// Detaches (drains) blue's target, then terminates its fleet.
    async fn retire_blue(&self, service: &ServiceName, blue: Option<&Blue>) -> Result<()> {
        let Some(blue) = blue else {
            return Ok(());
        };
        self.cleanup("detach old target", || {
            self.engine.router.detach(service, &blue.target)
        })
        .await?;
        self.emit(EventKind::TargetDetached {
            target: blue.target.clone(),
        });
        self.cleanup("terminate old fleet", || {
            self.engine.fleet.terminate(service, &blue.fleet)
        })
        .await?;
        self.emit(EventKind::FleetTerminated {
            fleet: blue.fleet.clone(),
        });
        Ok(())
    }

    /// Marks the image promoted (when it is the service's own), then applies retention: the
    /// images retired, and whether all went well.
    async fn tidy_images(&self, service: &ServiceName) -> (Vec<ImageId>, Result<()>) {
        if self.rec.image.service.as_ref() == Some(service) {
            let labels = Labels::from([(tags::PROMOTED.to_owned(), self.rec.id.to_string())]);
            let labelled = self
                .cleanup("label image", || {
                    self.engine
                        .images
                        .label(service, &self.rec.image.id, &labels)
                })
                .await;
            if let Err(e) = labelled {
                return (Vec::new(), Err(e));
            }
        }
        let mut retired = Vec::new();
        let applied = self.apply_retention(service, &mut retired).await;
        (retired, applied)
    }

    /// Retires the service's images beyond the newest `keep_images`, keeping any in use, the
    /// one just deployed and the one it replaced; each retired image is added to `retired`.
    async fn apply_retention(
        &self,
        service: &ServiceName,
        retired: &mut Vec<ImageId>,
    ) -> Result<()> {
        let engine = self.engine;
        let images = self
            .cleanup_read("list images", || engine.images.list(service))
            .await?;
        let mut keep: BTreeSet<ImageId> = BTreeSet::from([self.rec.image.id.clone()]);
        if let Some(blue) = &self.rec.blue {
            keep.insert(blue.image.clone());
        }
        // Fleets only keep more: with nothing beyond retention already, they need no reading.
        if beyond_retention(images.clone(), &keep, engine.settings.keep_images)
            .next()
            .is_none()
        {
            return Ok(());
        }
        let fleets = self
            .cleanup_read("list fleets", || engine.fleet.list(service))
            .await?;
        keep.extend(fleets.into_iter().map(|f| f.image));
        for image in beyond_retention(images, &keep, engine.settings.keep_images) {
            match self
                .cleanup("retire image", || engine.images.retire(service, &image.id))
                .await
            {
                Ok(_) => {
                    self.emit(EventKind::ImageRetired {
                        image: image.id.clone(),
                    });
                    retired.push(image.id);
                }
                // An instance outside our fleets still uses it; retention leaves it be. Any other
                // refusal stops retention with the record left at Retire, to resume.
                Err(crate::Error::ImageInUse { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The images retention retires: beyond the newest `keep_newest`, and not in `keep`.
pub(in crate::engine) fn beyond_retention(
    mut images: Vec<Image>,
    keep: &BTreeSet<ImageId>,
    keep_newest: usize,
) -> impl Iterator<Item = Image> {
    images.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    let keep = keep.clone();
    images
        .into_iter()
        .skip(keep_newest)
        .filter(move |i| !keep.contains(&i.id))
}
