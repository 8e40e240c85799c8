//! The AWS calls each trait operation makes, as measured by `tests/it/deploy.rs`
//! (`aws_calls_do_not_grow_with_fleet_size`) and listed in the crate's README, so that
//! `Engine::plan` can say what a deployment will spend. Reads of ownership tags are cached
//! and not counted (one `DescribeTags` per 20 target groups the router has not seen before,
//! and per 20 groups without an owner that the entry point forwards to, each time).

use std::time::Duration;

use immutable_core::{Cost, Operation};

use crate::router::TARGETS_BATCH;

/// How long a target group drains when it does not say: the ALB default.
pub(crate) const DEFAULT_DEREGISTRATION_DELAY: Duration = Duration::from_secs(300);

/// `DescribeImages`, `CreateTags`, `DescribeInstances`, `DeregisterImage`, `DeleteSnapshot`.
///
/// [`AwsImageStore::import`](crate::AwsImageStore::import) is no trait operation, so it has
/// no entry here: one `DescribeImages` and one `CreateTags`, none when refused before them.
pub(crate) fn image(operation: Operation) -> Option<Cost> {
    Some(match operation {
        Operation::ResolveImage | Operation::ListImages => Cost::calls(1),
        // CreateTags: the ownership tag was read when the deployment resolved the image.
        Operation::LabelImage => Cost::calls(1),
        // The ownership check, the users' check, DeregisterImage, one DeleteSnapshot.
        Operation::RetireImage => Cost::calls(4),
        _ => return None,
    })
}

/// `DescribeInstances` (pages of `page_size`), `RunInstances` per subnet, `TerminateInstances`.
pub(crate) fn fleet(operation: Operation, subnets: usize, page_size: i32) -> Option<Cost> {
    let page = u32::try_from(page_size).unwrap_or(1000);
    let runs = u32::try_from(subnets.max(1)).unwrap_or(u32::MAX);
    Some(match operation {
        // The idempotency lookup, then one RunInstances per subnet (or the default subnet).
        Operation::Launch => Cost::calls(1 + runs),
        Operation::Describe => Cost::calls(0).batched(1, page),
        Operation::ListFleets => Cost::calls(1),
        Operation::Terminate => Cost::calls(1).batched(1, 1000),
        _ => return None,
    })
}

/// `AsgFleet`: Auto Scaling and EC2 calls per operation, with the serving group's policies,
/// schedules and hooks counted as none (each one copied is one more call at launch).
pub(crate) fn asg_fleet(operation: Operation, deletes_versions: bool) -> Option<Cost> {
    Some(match operation {
        // The serving group and its policies, schedules, hooks and warm pool (5 reads), the
        // group by name, the template's versions, a new version, the group, suspending its
        // processes, and the group read back.
        Operation::Launch => Cost::calls(11),
        Operation::Describe => Cost::calls(1),
        Operation::ListFleets => Cost::calls(1),
        // The group (ownership); its launch template version read (the fleet's marker) and
        // deleted; the group.
        Operation::Terminate => Cost::calls(2 + 2 * u32::from(deletes_versions)),
        // The group (ownership), then suspend or resume.
        Operation::SetScaling => Cost::calls(2),
        _ => return None,
    })
}

/// What the router's configuration changes in its costs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouterShape {
    /// The service copies the serving group's settings (two more reads per attach).
    pub(crate) copies_settings: bool,
    /// The service sets a deregistration delay (one more write per attach).
    pub(crate) sets_delay: bool,
    /// The service has a preview listener (without one, `preview` makes no call).
    pub(crate) previews: bool,
    /// The longest drain a detach waits for.
    pub(crate) drain: Duration,
    /// How often a detach polls while its targets drain.
    pub(crate) drain_poll: Duration,
    /// What a fleet's joining or leaving its group costs, when fleets join groups themselves.
    pub(crate) membership: Option<Cost>,
}

/// `DescribeTargetGroups`, `CreateTargetGroup`, `RegisterTargets`, `DescribeTargetHealth`,
/// `DescribeListeners`, `ModifyListener`, `DeregisterTargets`, `DeleteTargetGroup`.
pub(crate) fn router(operation: Operation, shape: RouterShape) -> Option<Cost> {
    let batch = u32::try_from(TARGETS_BATCH).unwrap_or(1000);
    Some(match operation {
        // Find by name, create; then the fleet joins the group, or its instances are
        // registered in batches.
        Operation::Attach => {
            let extra = 2 * u32::from(shape.copies_settings) + u32::from(shape.sets_delay);
            match shape.membership {
                Some(join) => Cost::calls(2 + extra + join.least(0) as u32),
                None => Cost::calls(2 + extra).batched(1, batch),
            }
        }
        // The groups named for the service; the entry point's (an adopted group keeps its
        // own name) come from the listener read it shares with the plan's routing read.
        Operation::Targets => Cost::calls(1),
        Operation::Health | Operation::Routing => Cost::calls(1),
        // Read the listener, write it.
        Operation::SetWeights => Cost::calls(2),
        Operation::Preview => Cost::calls(if shape.previews { 2 } else { 0 }),
        // Refuse a serving group and check the preview (a listener read each), read the
        // targets, deregister in batches, the first drain poll, delete; while they drain, the
        // group's delay once and a health read per poll.
        Operation::Detach => {
            let listeners = 1 + u32::from(shape.previews);
            let drain = shape.drain + 3 * shape.drain_poll;
            match shape.membership {
                // The fleet leaves the group, which deregisters its instances itself: no
                // deregistration, and a drain only when the group still lists them.
                Some(leave) => Cost::calls(2 + listeners + leave.least(0) as u32).polling(
                    2,
                    shape.drain_poll,
                    drain,
                ),
                None => {
                    Cost::calls(3 + listeners)
                        .batched(1, batch)
                        .polling(1, shape.drain_poll, drain)
                }
            }
        }
        _ => return None,
    })
}
