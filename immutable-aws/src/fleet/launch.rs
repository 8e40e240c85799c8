//! `AwsFleet::launch` in named steps: look the key up, launch each subnet's share, ask the
//! subnets that worked for what is still missing, and report a launch that falls short.

use aws_sdk_ec2::operation::run_instances::builders::RunInstancesFluentBuilder;
use aws_sdk_ec2::types::{IamInstanceProfileSpecification, LaunchTemplateSpecification};
use immutable_core::{Error, FleetId, FleetInfo, FleetSpec, Labels, ResourceKind, Result, tags};

use super::group::instance;
use super::{AwsFleet, LaunchTemplate, fleet_id};
use crate::ec2::{Described, filter, instance_state, live_instances, tag_filter};
use crate::error::{Call, MapAws};
use crate::ownership::instance_tags;

/// A launch under way: the fleet's instances so far and each failing subnet's error.
struct Attempt<'a> {
    spec: &'a FleetSpec,
    id: FleetId,
    /// How many live instances the key had before this launch (part of every client token).
    existing: u32,
    have: Vec<Described>,
    failures: Vec<(String, Error)>,
}

impl Attempt<'_> {
    /// How many instances the fleet still lacks.
    fn missing(&self) -> u32 {
        self.spec.capacity.saturating_sub(self.have.len() as u32)
    }

    fn failed(&mut self, subnet: Option<&str>, error: Error) {
        let name = subnet.unwrap_or("default subnet").to_owned();
        self.failures.push((name, error));
    }

    /// The fleet, or why it falls short: the first error when nothing launched, every subnet's
    /// error for a partial launch.
    fn finish(self) -> Result<FleetInfo> {
        let launched = self.have.len() as u32;
        let (spec, id) = (self.spec, &self.id);
        if launched == 0 {
            return Err(self.failures.into_iter().next().map_or_else(
                || Error::provider(format!("RunInstances launched nothing for fleet {id}")),
                |(_, e)| e,
            ));
        }
        if launched < spec.capacity {
            let detail: Vec<String> = self
                .failures
                .iter()
                .map(|(s, e)| format!("{s}: {e}"))
                .collect();
            return Err(Error::provider(format!(
                "partial launch of fleet {id}: {launched} of {} instances ({}); the launched \
                 instances keep their tags: terminate the fleet, or launch again to top it up",
                spec.capacity,
                detail.join("; ")
            )));
        }
        Ok(FleetInfo::new(self.id, spec.clone())
            .with_instances(self.have.into_iter().map(instance)))
    }
}

/// How many instances each subnet gets: round-robin from the subnets holding fewest.
fn spread(need: u32, subnets: &[String], existing: &[Described]) -> Vec<(Option<String>, u32)> {
    if subnets.is_empty() {
        return vec![(None, need)];
    }
    let mut counts: Vec<(usize, u32)> = subnets
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let have = existing
                .iter()
                .filter(|e| e.subnet.as_deref() == Some(s))
                .count() as u32;
            (i, have)
        })
        .collect();
    let mut add = vec![0u32; subnets.len()];
    for _ in 0..need {
        let slot = counts
            .iter_mut()
            .min_by_key(|(i, have)| (*have, *i))
            .expect("subnets are not empty");
        add[slot.0] += 1;
        slot.1 += 1;
    }
    subnets
        .iter()
        .zip(add)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (Some(s.clone()), n))
        .collect()
}

impl AwsFleet {
    /// Launches `spec`, or tops up the fleet already launched under its key.
    pub(super) async fn launch_fleet(&self, spec: &FleetSpec) -> Result<FleetInfo> {
        if spec.capacity == 0 {
            return Err(Error::invalid("capacity", "must be at least 1"));
        }
        let id = fleet_id(&spec.key);
        let have = self.launched_under_key(spec, &id).await?;
        let mut attempt = Attempt {
            spec,
            id,
            existing: have.len() as u32,
            have,
            failures: Vec::new(),
        };
        if attempt.missing() > 0 {
            let worked = self.launch_per_subnet(&mut attempt).await;
            self.make_up_shortfall(&mut attempt, &worked).await;
        }
        self.known.remember(&attempt.id, &attempt.have);
        attempt.finish()
    }

    /// The idempotency lookup: the live instances already launched under the key. A key's
    /// instances all run its image, and the image filter comes first: an endpoint that applies
    /// filters in order (moto does) then compares tags only of that image's instances.
    async fn launched_under_key(&self, spec: &FleetSpec, id: &FleetId) -> Result<Vec<Described>> {
        let filters = [
            filter("image-id", &[spec.image.as_str()]),
            live_instances(),
            tag_filter(tags::SERVICE, spec.service.as_str()),
            tag_filter(tags::FLEET_KEY, spec.key.as_str()),
        ];
        self.instances(&filters, id.as_str()).await
    }

    /// One `RunInstances` per subnet for its share of what is missing, up to
    /// `concurrent_launches` at once; returns the subnets whose call worked.
    async fn launch_per_subnet(&self, a: &mut Attempt<'_>) -> Vec<Option<String>> {
        use futures::StreamExt;
        let plan = spread(a.missing(), &self.settings.subnets, &a.have);
        let calls: Vec<_> = plan
            .iter()
            .enumerate()
            .map(|(i, (subnet, count))| {
                let token = format!("{}-{}-{i}", a.spec.key, a.existing);
                self.run(a.spec, subnet.as_deref(), *count, token)
            })
            .collect();
        // In plan order, whichever finishes first.
        let results: Vec<_> = futures::stream::iter(calls)
            .buffered(self.settings.concurrent_launches)
            .collect()
            .await;
        let mut worked = Vec::new();
        for ((subnet, count), result) in plan.into_iter().zip(results) {
            match result {
                Ok(new) => {
                    if (new.len() as u32) < count {
                        let short = Error::provider(format!("launched {} of {count}", new.len()));
                        a.failed(subnet.as_deref(), short);
                    }
                    a.have.extend(new);
                    worked.push(subnet);
                }
                Err(e) => a.failed(subnet.as_deref(), e),
            }
        }
        worked
    }

    /// Asks the subnets that worked, in turn, for what a failing subnet did not launch.
    async fn make_up_shortfall(&self, a: &mut Attempt<'_>, worked: &[Option<String>]) {
        for (i, subnet) in worked.iter().enumerate() {
            let short = a.missing();
            if short == 0 {
                break;
            }
            let token = format!("{}-{}-r{i}", a.spec.key, a.existing);
            match self.run(a.spec, subnet.as_deref(), short, token).await {
                Ok(new) => a.have.extend(new),
                Err(e) => a.failed(subnet.as_deref(), e),
            }
        }
    }

    /// One all-or-nothing `RunInstances` call: `count` instances in one subnet.
    async fn run(
        &self,
        spec: &FleetSpec,
        subnet: Option<&str>,
        count: u32,
        token: String,
    ) -> Result<Vec<Described>> {
        let id = fleet_id(&spec.key);
        let out = self
            .run_request(spec, &id, subnet)
            // A subnet short of capacity fails the call, and its share is asked of the others.
            .min_count(count as i32)
            .max_count(count as i32)
            .client_token(token)
            .send()
            .await
            .aws(Call::new("RunInstances", ResourceKind::Fleet, id.as_str()))?;
        Ok(out
            .instances()
            .iter()
            .filter_map(|i| {
                Some(Described {
                    id: i.instance_id()?.into(),
                    state: instance_state(i.state().and_then(|s| s.name())),
                    image: spec.image.clone(),
                    subnet: i.subnet_id().or(subnet).map(str::to_owned),
                    tags: Labels::new(),
                })
            })
            .collect())
    }

    /// A `RunInstances` request for one subnet with the configured settings and the fleet's
    /// tags, the image overriding the launch template's.
    fn run_request(
        &self,
        spec: &FleetSpec,
        id: &FleetId,
        subnet: Option<&str>,
    ) -> RunInstancesFluentBuilder {
        let s = &self.settings;
        let profile = s.iam_instance_profile.as_ref().map(|p| {
            let b = IamInstanceProfileSpecification::builder();
            if p.starts_with("arn:") {
                b.arn(p)
            } else {
                b.name(p)
            }
            .build()
        });
        let template = s.template.as_ref().map(|t| {
            let b = LaunchTemplateSpecification::builder();
            match t {
                LaunchTemplate::Id(v) => b.launch_template_id(v),
                LaunchTemplate::Name(v) => b.launch_template_name(v),
            }
            .set_version(s.template_version.clone())
            .build()
        });
        let groups = (!s.security_groups.is_empty()).then(|| s.security_groups.clone());
        self.ec2
            .run_instances()
            .image_id(spec.image.as_str())
            .set_tag_specifications(Some(instance_tags(spec, id)))
            .set_instance_type(s.instance_type.as_deref().map(Into::into))
            .set_subnet_id(subnet.map(str::to_owned))
            .set_key_name(s.key_name.clone())
            .set_user_data(s.user_data.as_ref().map(aws_smithy_types::base64::encode))
            .set_security_group_ids(groups)
            .set_iam_instance_profile(profile)
            .set_launch_template(template)
    }
}

#[cfg(test)]
mod tests {
    use immutable_core::InstanceState;

    use super::*;

    #[test]
    fn instances_spread_over_subnets_evenly() {
        let subnets = vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        assert_eq!(
            spread(7, &subnets, &[]),
            vec![
                (Some("a".into()), 3),
                (Some("b".into()), 2),
                (Some("c".into()), 2)
            ]
        );
        let have = vec![Described {
            id: "i-1".into(),
            state: InstanceState::Running,
            image: "ami-1".into(),
            subnet: Some("a".into()),
            tags: Labels::new(),
        }];
        assert_eq!(
            spread(2, &subnets, &have),
            vec![(Some("b".into()), 1), (Some("c".into()), 1)]
        );
        assert_eq!(spread(4, &[], &[]), vec![(None, 4)]);
    }
}
