//! What one build says: its AMI in each region, and the labels its image is imported with.

use immutable_core::{Error, ImageId, Labels, Result, tags};
use serde_json::Value;

use super::{BUILD_LABEL, PackerBuild, RUN_LABEL};
use crate::ec2::ami_id;

/// EC2's limits on a tag: key and value lengths, in characters.
const MAX_KEY: usize = 128;
const MAX_VALUE: usize = 256;

impl PackerBuild {
    /// Every AMI the build made, as `(region, AMI id)` in the order of its `artifact_id`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `builds[i].artifact_id` when it is not comma-separated
    /// `region:ami-id` pairs, as the `amazon-*` builders write it (the build of another
    /// builder, say).
    pub fn amis(&self) -> Result<Vec<(String, ImageId)>> {
        let field = self.field("artifact_id");
        let not_amis = |reason: String| {
            let builder = self.builder_type.as_deref().unwrap_or("unknown");
            self.origin.error(
                &field,
                format!(
                    "{reason}: build `{}` (builder `{builder}`) should name its AMIs as \
                     comma-separated `region:ami-id` pairs, as the amazon-* builders write them",
                    self.name
                ),
            )
        };
        self.artifact_id
            .split(',')
            .map(|pair| {
                let pair = pair.trim();
                let (region, ami) = pair
                    .split_once(':')
                    .ok_or_else(|| not_amis(format!("`{pair}` has no region")))?;
                let is_region = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
                if region.is_empty() || !region.chars().all(is_region) {
                    return Err(not_amis(format!("`{region}` in `{pair}` is not a region")));
                }
                let ami = ami_id(&field, ami).map_err(|_| {
                    not_amis(format!(
                        "`{ami}` in `{pair}` is not an AMI id (`ami-` and hex)"
                    ))
                })?;
                Ok((region.to_owned(), ami))
            })
            .collect()
    }

    /// The AMI the build made in `region`.
    ///
    /// # Errors
    /// As [`amis`](Self::amis) for a malformed `artifact_id`, and [`Error::InvalidInput`]
    /// naming `region` when the build has no AMI there (listing the regions it has).
    pub fn ami_for(&self, region: &str) -> Result<ImageId> {
        let amis = self.amis()?;
        if let Some((_, ami)) = amis.iter().find(|(r, _)| r == region) {
            return Ok(ami.clone());
        }
        let regions: Vec<&str> = amis.iter().map(|(r, _)| r.as_str()).collect();
        Err(Error::invalid(
            "region",
            format!(
                "build `{}` of {} has no AMI in `{region}`; it has AMIs in {} ({}): import in one \
                 of those regions, or add `{region}` to the template's `ami_regions`",
                self.name,
                self.origin.name(),
                regions.join(", "),
                self.field("artifact_id"),
            ),
        ))
    }

    /// The labels to import the build's image with: its `custom_data`, plus
    /// [`BUILD_LABEL`] (`packer:build`) = the build's name and, when the build names its run,
    /// [`RUN_LABEL`] (`packer:run`) = its `packer_run_uuid`. Every one is a legal EC2 tag and
    /// passes [`check_labels`](immutable_core::check_labels), so the import takes them as
    /// they are.
    ///
    /// `custom_data` values must be strings: Packer writes only strings (its `custom_data` is
    /// a map of strings), so another value was written by hand or by another tool, and is
    /// refused rather than guessed at.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] naming `builds[i].custom_data.<key>` when the value is not a
    /// string, the key is in the SDK's namespace (`immutable:`, the promotion mark included:
    /// it records a deployment that succeeded), in AWS's (`aws:`), empty, [`BUILD_LABEL`] or [`RUN_LABEL`] (the import's own), or the key or
    /// value is longer than EC2 allows (128 and 256 characters).
    pub fn labels(&self) -> Result<Labels> {
        let mut labels = Labels::new();
        for (key, value) in &self.custom_data {
            let field = self.field(&format!("custom_data.{key}"));
            let refuse = |reason: String| self.origin.error(&field, reason);
            let Value::String(value) = value else {
                return Err(refuse(format!(
                    "is `{value}`, not a string: labels are strings; quote it in the \
                     post-processor's custom_data"
                )));
            };
            if key.is_empty() {
                return Err(refuse("is an empty key: an EC2 tag needs one".to_owned()));
            }
            if key == BUILD_LABEL || key == RUN_LABEL {
                return Err(refuse(format!(
                    "is set by the import (`{BUILD_LABEL}` from the build's name, `{RUN_LABEL}` \
                     from its run); rename the key"
                )));
            }
            // Stricter than `check_labels`: the promotion mark records a deployment that
            // succeeded, which a build has not had.
            if key.starts_with(tags::PREFIX) {
                return Err(refuse(format!(
                    "begins with `{}`, which the SDK keeps for its own tags; rename the key",
                    tags::PREFIX
                )));
            }
            if key.to_ascii_lowercase().starts_with("aws:") {
                return Err(refuse(
                    "begins with `aws:`, which AWS keeps for its own tags; rename the key"
                        .to_owned(),
                ));
            }
            if key.chars().count() > MAX_KEY || value.chars().count() > MAX_VALUE {
                return Err(refuse(format!(
                    "is too long for an EC2 tag: keys have at most {MAX_KEY} characters, values \
                     {MAX_VALUE}"
                )));
            }
            labels.insert(key.clone(), value.clone());
        }
        labels.insert(BUILD_LABEL.to_owned(), self.name.clone());
        if let Some(run) = &self.packer_run_uuid {
            labels.insert(RUN_LABEL.to_owned(), run.clone());
        }
        Ok(labels)
    }
}
