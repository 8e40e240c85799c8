//! What the flags and the service file say together: a flag wins over its key.

use crate::cli::{AwsFlags, DeploySettings, LocalFlags};

use super::EngineTable;

fn or_vec(flag: Vec<String>, file: Vec<String>) -> Vec<String> {
    if flag.is_empty() { file } else { flag }
}

pub(super) fn merge_aws(f: AwsFlags, file: AwsFlags) -> AwsFlags {
    AwsFlags {
        region: f.region.or(file.region),
        endpoint_url: f.endpoint_url.or(file.endpoint_url),
        listener_arn: f.listener_arn.or(file.listener_arn),
        rule_arn: f.rule_arn.or(file.rule_arn),
        preview_listener_arn: f.preview_listener_arn.or(file.preview_listener_arn),
        launch_template: f.launch_template.or(file.launch_template),
        instance_type: f.instance_type.or(file.instance_type),
        subnets: or_vec(f.subnets, file.subnets),
        security_groups: or_vec(f.security_groups, file.security_groups),
        vpc_id: f.vpc_id.or(file.vpc_id),
        port: f.port.or(file.port),
        health_check_path: f.health_check_path.or(file.health_check_path),
        fleet: f.fleet.or(file.fleet),
        min_size: f.min_size.or(file.min_size),
        max_size: f.max_size.or(file.max_size),
        keep_template_versions: f.keep_template_versions || file.keep_template_versions,
    }
}

pub(super) fn merge_local(f: LocalFlags, file: LocalFlags) -> LocalFlags {
    LocalFlags {
        root: f.root.or(file.root),
        haproxy_socket: f.haproxy_socket.or(file.haproxy_socket),
        router_state: f.router_state.or(file.router_state),
        health_check_interval: f.health_check_interval.or(file.health_check_interval),
    }
}

pub(super) fn merge_engine(f: EngineTable, file: EngineTable) -> EngineTable {
    EngineTable {
        poll_interval: f.poll_interval.or(file.poll_interval),
        lease_ttl: f.lease_ttl.or(file.lease_ttl),
        launch_timeout: f.launch_timeout.or(file.launch_timeout),
        keep_images: f.keep_images.or(file.keep_images),
    }
}

/// The deploy flags over the service file's `[deploy]` table.
pub(crate) fn merge_deploy(f: DeploySettings, file: DeploySettings) -> DeploySettings {
    DeploySettings {
        capacity: f.capacity.or(file.capacity),
        min_healthy: f.min_healthy.or(file.min_healthy),
        health_timeout: f.health_timeout.or(file.health_timeout),
        bake_time: f.bake_time.or(file.bake_time),
        strategy: f.strategy.or(file.strategy),
        weights: if f.weights.is_empty() {
            file.weights
        } else {
            f.weights
        },
        linear_step: f.linear_step.or(file.linear_step),
        pause: f.pause.or(file.pause),
        approval_timeout: f.approval_timeout.or(file.approval_timeout),
        on_approval_timeout: f.on_approval_timeout.or(file.on_approval_timeout),
    }
}
