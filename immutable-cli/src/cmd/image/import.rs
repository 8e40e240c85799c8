//! `image import`: a directory (local), a Docker image or archive (Docker), AMIs (AWS). Bad
//! input is refused before the catalog is opened (and created).

use immutable_core::{Error, Labels, ServiceName};
use immutable_docker::ImageSource;
use immutable_local::ImportRequest;

use super::{Out, local_details, parse_pairs, print_one, row};
use crate::backend::Catalog;
use crate::cli::{BackendKind, ImportArgs};
use crate::config::Config;
use crate::exit::{Code, Failure, reason};
use crate::output::ImageAction;

pub(super) async fn import(
    config: &Config,
    out: Out,
    service: &ServiceName,
    args: &ImportArgs,
) -> Result<Code, Failure> {
    let labels = parse_pairs("--label", &args.label)?;
    match config.backend()? {
        BackendKind::Local => {
            let request = local_request(service, args, labels)?;
            // Refused before the store is opened (and created): bad input writes nothing.
            request.validate()?;
            let catalog = Catalog::open(config).await?;
            let Catalog::Local { images, .. } = &catalog else {
                unreachable!("a local backend's catalog")
            };
            let image = images.import(request).await?;
            let local = local_details(&catalog, service, &image).await?;
            print_one(
                out,
                service,
                ImageAction::Imported,
                row(&image, &[]),
                local,
                None,
            );
        }
        BackendKind::Docker => {
            let request = docker_request(service, args, labels)?;
            let catalog = Catalog::open(config).await?;
            let Catalog::Docker { images, .. } = &catalog else {
                unreachable!("a Docker backend's catalog")
            };
            let image = images.import(request).await?;
            print_one(
                out,
                service,
                ImageAction::Imported,
                row(&image, &[]),
                None,
                None,
            );
        }
        BackendKind::Aws => {
            let (image, packer) = crate::cmd::packer::import(config, service, args, labels).await?;
            print_one(
                out,
                service,
                ImageAction::Imported,
                row(&image, &[]),
                None,
                packer,
            );
        }
    }
    Ok(Code::Succeeded)
}

fn local_request(
    service: &ServiceName,
    args: &ImportArgs,
    labels: Labels,
) -> Result<ImportRequest, Failure> {
    if args.image.is_some() || args.archive.is_some() {
        return Err(Failure::refused(
            "--image and --archive import a Docker image: they are for --backend docker; the \
             local backend imports a directory (image import DIR --name NAME --command \"...\")",
        ));
    }
    if args.packer_manifest.is_some() || args.ami.is_some() {
        return Err(Failure::refused(
            "--packer-manifest and --ami import AMIs: they are for --backend aws; the local \
             backend imports a directory (image import DIR --name NAME --command \"...\")",
        ));
    }
    let missing = |what: &str| {
        Failure::refused(format!(
            "the local backend imports a directory: pass {what} (image import DIR --name \
             v1 --command \"./server --port-from-env\")"
        ))
    };
    let dir = args.dir.as_ref().ok_or_else(|| missing("DIR"))?;
    let name = args.name.as_ref().ok_or_else(|| missing("--name"))?;
    let line = args.command.as_ref().ok_or_else(|| missing("--command"))?;
    let command = shlex::split(line)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            Failure::refused(format!(
                "--command `{line}`: an unclosed quote, or no words; it is split into words \
             like a shell would, and run without one"
            ))
        })?;
    let mut request = ImportRequest::new(service.as_str(), name, dir, command);
    request.labels = labels;
    for (k, v) in parse_pairs("--env", &args.env)? {
        request = request.env(k, v);
    }
    if let Some(p) = &args.health_path {
        request = request.health_path(p);
    }
    if let Some(v) = &args.port_var {
        request = request.port_var(v);
    }
    Ok(request)
}

/// A Docker import: `--name` and one of `--image` or `--archive`, checked.
fn docker_request(
    service: &ServiceName,
    args: &ImportArgs,
    labels: Labels,
) -> Result<immutable_docker::ImportRequest, Failure> {
    let usage = "image import --name v2 --image web:v2 (or --archive web-v2.tar)";
    if args.packer_manifest.is_some() || args.ami.is_some() {
        return Err(Failure::refused(format!(
            "--packer-manifest and --ami import AMIs: they are for --backend aws; the Docker \
             backend imports an image a host has, or a `docker save` archive ({usage})"
        )));
    }
    let local = [
        ("DIR", args.dir.is_some()),
        ("--command", args.command.is_some()),
        ("--env", !args.env.is_empty()),
        ("--health-path", args.health_path.is_some()),
        ("--port-var", args.port_var.is_some()),
    ];
    if let Some((flag, _)) = local.iter().find(|(_, given)| *given) {
        return Err(Failure::refused(format!(
            "{flag} is for --backend local: a Docker image carries its entrypoint and \
             environment, and HAProxy checks the path of [proxy] ({usage})"
        )));
    }
    let name = args
        .name
        .as_ref()
        .ok_or_else(|| Failure::refused(format!("which name? pass --name ({usage})")))?;
    let (source, flag) = match (&args.image, &args.archive) {
        (Some(image), None) => (ImageSource::Docker(image.clone()), "--image"),
        (None, Some(archive)) => (ImageSource::Archive(archive.clone()), "--archive"),
        _ => {
            return Err(Failure::refused(format!(
                "which image? pass --image REF or --archive FILE ({usage})"
            )));
        }
    };
    let mut request = immutable_docker::ImportRequest::new(service.as_str(), name, source);
    for (k, v) in labels {
        request = request.label(k, v);
    }
    request.validate().map_err(|e| {
        let flag = match &e {
            Error::InvalidInput { field, .. } if field == "name" => "--name",
            Error::InvalidInput { field, .. } if field == "labels" => "--label",
            Error::InvalidInput { .. } => flag,
            _ => return Failure::from(e),
        };
        Failure::refused(format!("{flag}: {}", reason(e)))
    })?;
    Ok(request)
}
