//! `image import --packer-manifest FILE [--build NAME] | --ami AMI` on the AWS backend: the
//! AMI of the configured region, tagged as the service's image.

use immutable_aws::packer::PackerManifest;
use immutable_core::{Image, ImageId, Labels, ServiceName};

use crate::backend::Catalog;
use crate::cli::ImportArgs;
use crate::config::Config;
use crate::exit::Failure;
use crate::output::PackerDoc;

/// Imports the AMI the arguments name; the image, and the Packer build it came from.
pub(crate) async fn import(
    config: &Config,
    service: &ServiceName,
    args: &ImportArgs,
    mut labels: Labels,
) -> Result<(Image, Option<PackerDoc>), Failure> {
    if args.dir.is_some() || args.command.is_some() || args.name.is_some() {
        return Err(Failure::refused(
            "DIR, --name and --command import a directory: they are for --backend local; on \
             AWS import the AMIs Packer built (--packer-manifest FILE) or one AMI (--ami ID)",
        ));
    }
    if args.image.is_some() || args.archive.is_some() {
        return Err(Failure::refused(
            "--image and --archive import a Docker image: they are for --backend docker; on \
             AWS import the AMIs Packer built (--packer-manifest FILE) or one AMI (--ami ID)",
        ));
    }
    // The manifest is read and its build chosen before any AWS call.
    let manifest = match &args.packer_manifest {
        Some(path) => Some(PackerManifest::from_file(path)?),
        None => None,
    };
    let catalog = Catalog::open(config).await?;
    let Catalog::Aws { images, region, .. } = &catalog else {
        unreachable!("an AWS backend's catalog")
    };
    let (ami, packer) = match (&manifest, &args.ami) {
        (Some(manifest), None) => {
            let build = manifest.select(args.build.as_deref())?;
            let region = region.clone().ok_or_else(|| {
                Failure::refused(
                    "which region's AMI? pass --region (or region in [aws] of the service \
                     file, or AWS_REGION)",
                )
            })?;
            let ami = build.ami_for(&region)?;
            let mut from_build = build.labels()?;
            from_build.append(&mut labels);
            labels = from_build;
            let doc = PackerDoc {
                build: build.name.clone(),
                region,
            };
            (ami, Some(doc))
        }
        (None, Some(ami)) => (ImageId::new(ami.clone()), None),
        _ => {
            return Err(Failure::refused(
                "on AWS, import the AMIs Packer built (--packer-manifest FILE [--build \
                 NAME]) or one AMI (--ami ami-...)",
            ));
        }
    };
    let image = images.import(service, &ami, &labels).await?;
    Ok((image, packer))
}
