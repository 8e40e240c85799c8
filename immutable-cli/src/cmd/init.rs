//! `init`: a commented service file for a backend, so that a first deploy is `immutable
//! --service-file web.toml deploy --image v1`.

use std::path::{Path, PathBuf};

use crate::cli::{BackendKind, InitArgs};
use crate::exit::{Code, Failure};
use crate::output::{Document, InitDoc};

/// `immutable --service NAME init --backend local|docker|aws [--root DIR] [--port N] [--file F]`.
#[allow(clippy::print_stdout)] // the command's output
pub(crate) fn init(service: Option<&str>, json: bool, args: &InitArgs) -> Result<Code, Failure> {
    let service = service.ok_or_else(|| {
        Failure::refused("init writes a service's file: name it with --service NAME")
    })?;
    let file = args
        .file
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{service}.toml")));
    if args.port == 0 || args.port == u16::MAX {
        return Err(Failure::refused(format!(
            "--port {}: pick a port from 1 to 65534 (the preview entry point takes the next)",
            args.port
        )));
    }
    let root = || {
        let root = args
            .root
            .clone()
            .unwrap_or_else(|| PathBuf::from(".immutable"));
        std::path::absolute(&root)
            .map_err(|e| Failure::refused(format!("--root {}: {e}", root.display())))
    };
    let (text, next) = match args.backend {
        BackendKind::Local => (
            local(service, &root()?, args.port),
            local_next(&file, service),
        ),
        BackendKind::Docker => (
            docker(service, &root()?, args.port),
            docker_next(&file, service),
        ),
        BackendKind::Aws => (aws(service), aws_next(&file)),
    };
    write(&file, &text, args.force)?;
    if json {
        Document::Init(InitDoc {
            file: file.display().to_string(),
            service: service.to_owned(),
            backend: match args.backend {
                BackendKind::Local => "local",
                BackendKind::Docker => "docker",
                BackendKind::Aws => "aws",
            }
            .into(),
            next,
        })
        .print();
    } else {
        println!("wrote {}; next:", file.display());
        for line in next {
            println!("  {line}");
        }
    }
    Ok(Code::Succeeded)
}

/// Writes the file; unless `force`, only if it does not exist (checked as it is created).
fn write(file: &Path, text: &str, force: bool) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut f = options.open(file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::refused(format!(
                "{} exists: nothing was written (pass --force to replace it)",
                file.display()
            ))
        } else {
            Failure::refused(format!("cannot write {}: {e}", file.display()))
        }
    })?;
    f.write_all(text.as_bytes())
        .map_err(|e| Failure::error(format!("cannot write {}: {e}", file.display())))
}

fn local_next(file: &Path, service: &str) -> Vec<String> {
    let f = crate::invocation::sh(&file.display().to_string());
    vec![
        format!("immutable --service-file {f} proxy start"),
        format!(
            "immutable --service-file {f} image import ./build --name v1 --command \"./server\""
        ),
        format!("immutable --service-file {f} deploy --image v1"),
        format!("curl http://127.0.0.1:<port>/   (the {service} entry point in {f})"),
    ]
}

fn docker_next(file: &Path, service: &str) -> Vec<String> {
    let f = crate::invocation::sh(&file.display().to_string());
    vec![
        format!("immutable --service-file {f} proxy start"),
        format!("docker build -t {service}:v1 .   (an app listening on 127.0.0.1:$PORT)"),
        format!("immutable --service-file {f} image import --name v1 --image {service}:v1"),
        format!("immutable --service-file {f} deploy --image v1"),
        format!("curl http://127.0.0.1:<port>/   (the {service} entry point in {f})"),
    ]
}

fn aws_next(file: &Path) -> Vec<String> {
    let f = crate::invocation::sh(&file.display().to_string());
    vec![
        format!("edit {f}: the listener, the launch template and the subnets"),
        format!("immutable --service-file {f} image import --packer-manifest packer-manifest.json"),
        format!("immutable --service-file {f} plan --image <name>"),
        format!("immutable --service-file {f} deploy --image <name>"),
    ]
}

/// A path as a TOML basic string's content.
fn toml_path(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn local(service: &str, root: &Path, port: u16) -> String {
    let root = toml_path(root);
    format!(
        r#"# Service `{service}` on the local backend: images and instances (OS processes) under
# `root`, traffic through an HAProxy that `immutable proxy start` runs for you. Every key is
# also a flag of the commands that use it (a flag wins): `immutable <command> --help`.
service = "{service}"
backend = "local"
# Where deployments are journaled and the service is locked. Default: <root>/journal.
# store = "file:/path/to/journal"

[local]
root = "{root}"
{haproxy}{tail}"#,
        haproxy = haproxy(service),
        tail = routed_tail(port),
    )
}

fn docker(service: &str, root: &Path, port: u16) -> String {
    let root = toml_path(root);
    format!(
        r#"# Service `{service}` on the Docker backend: images are Docker images (by id), instances
# are containers on one Docker host or several, traffic goes through an HAProxy that
# `immutable proxy start` runs for you. Every key is also a flag of the commands that use it
# (a flag wins): `immutable <command> --help`.
service = "{service}"
backend = "docker"
# Where deployments are journaled and the service is locked. Default: <root>/journal.
# store = "file:/path/to/journal"

[docker]
# The image catalog, the fleets' states, the router's state and the managed proxy.
root = "{root}"
# The Docker hosts, as NAME=URL (unix:///path/to/docker.sock or tcp://HOST:PORT); instance n
# of a fleet runs on host n mod their number. Default: DOCKER_HOST, else the local socket.
# docker_host = ["local=unix:///var/run/docker.sock"]
# TLS for tcp:// hosts: the directory of ca.pem, cert.pem and key.pem.
# docker_tls_dir = "/etc/docker/tls"
# "host": containers share the host's network, the app listens on 127.0.0.1:$PORT;
# "published": $PORT is published from Docker's bridge, the app listens on 0.0.0.0:$PORT.
docker_network = "host"
# Limits of each container, as Docker's --memory and --cpus.
# memory = "512m"
# cpus = 0.5
{haproxy}{tail}"#,
        haproxy = haproxy(service),
        tail = routed_tail(port),
    )
}

/// The HAProxy keys of `[local]` and `[docker]`.
fn haproxy(service: &str) -> String {
    format!(
        r#"# Your own HAProxy instead of the managed one: its admin socket (`stats socket ... level
# admin`). It needs a backend named `{service}` with a dynamic balance algorithm
# (roundrobin) and `option httpchk`, and `{service}:preview` for preview steps.
# haproxy_socket = "/run/haproxy/admin.sock"
# How often HAProxy checks each instance (GET health_path below).
health_check_interval = "500ms"
"#
    )
}

/// `[proxy]`, `[engine]` and `[deploy]` of a service behind the managed proxy.
fn routed_tail(port: u16) -> String {
    format!(
        r#"
[proxy]
# `immutable --service-file <this file> proxy start` serves the service on 127.0.0.1:port,
# and a candidate fleet on preview_port during preview steps.
port = {port}
preview_port = {preview}
# The path your app answers 200 on when it is ready.
health_path = "/health"

[engine]
# How often waits look at the instances and HAProxy.
poll_interval = "500ms"

[deploy]
# Instances per fleet.
capacity = 2
# "blue-green" (all at once), "canary" (weights, with pause between), or "linear".
strategy = "blue-green"
# weights = [10, 50]
# pause = "30s"
# How long the old fleet is kept after the switch: the fast-rollback window.
bake_time = "1m"
# How long a new fleet may take to become healthy before the deployment rolls back.
health_timeout = "1m"
"#,
        preview = port + 1
    )
}

fn aws(service: &str) -> String {
    format!(
        r#"# Service `{service}` on AWS: AMIs, EC2 instances (or Auto Scaling groups), an ALB.
# Every key is also a flag of the commands that use it (a flag wins):
# `immutable <command> --help`.
service = "{service}"
backend = "aws"
# Where deployments are journaled and the service is locked: a DynamoDB table shared by
# every runner, or a directory. Default: ~/.local/state/immutable/journal.
# store = "dynamodb:immutable-deployments"

[aws]
# region = "us-east-1"
# REQUIRED: the ALB listener whose default action routes the service (or rule_arn, a
# listener rule).
# listener_arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/web/..."
# A second listener for preview steps.
# preview_listener_arn = "arn:aws:elasticloadbalancing:..."
# REQUIRED: what instances launch with: a launch template (name or lt-...), or an
# instance type with subnets and security groups.
# launch_template = "{service}"
# subnets = ["subnet-0a1b2c3d", "subnet-4e5f6a7b"]
# security_groups = ["sg-0a1b2c3d"]
# "instances" (bare EC2 instances, the default) or "asg" (an Auto Scaling group per fleet).
# fleet = "instances"

[deploy]
# Instances per fleet.
capacity = 2
# "blue-green" (all at once), "canary" (weights, with pause between), or "linear".
strategy = "blue-green"
# weights = [10, 50]
# pause = "5m"
# How long the old fleet is kept after the switch: the fast-rollback window.
bake_time = "15m"
health_timeout = "10m"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key a template writes, the commented ones too, is one the service file takes.
    #[test]
    fn the_templates_parse_with_every_key_uncommented() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in [
            ("local", local("web", Path::new("/srv/immutable"), 8080)),
            ("docker", docker("web", Path::new("/srv/immutable"), 8080)),
            ("aws", aws("web")),
        ] {
            let uncommented: String = text
                .lines()
                .map(|l| match l.strip_prefix("# ") {
                    Some(rest) if rest.contains(" = ") && !rest.contains('`') => rest,
                    _ => l,
                })
                .map(|l| format!("{l}\n"))
                .collect();
            assert_ne!(uncommented, text, "{name}: some keys are commented out");
            for (which, t) in [("as written", &text), ("uncommented", &uncommented)] {
                let path = dir.path().join(format!("{name}.toml"));
                std::fs::write(&path, t).unwrap();
                if let Err(e) = crate::config::read_service_file(&path) {
                    panic!("{name} {which}: {}\n{t}", e.message);
                }
            }
        }
    }
}
