//! `image list|show|label|retire|import`: the service's images, on the configured backend.
//! They read and write the backend's catalog only: no store, no router, no engine.

mod import;

use std::collections::BTreeMap;

use immutable_core::{FleetInfo, Image, Labels, ServiceName, tags};

use crate::backend::{Catalog, users};
use crate::cli::ImageCommand;
use crate::config::Config;
use crate::exit::{Code, Failure};
use crate::output::{
    Document, ImageAction, ImageDoc, ImageRow, ImagesDoc, LocalImageDoc, PackerDoc,
};
use crate::request::image_ref;

/// How the command prints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) json: bool,
}

/// `immutable image ...`.
pub(crate) async fn image(
    config: &Config,
    out: Out,
    command: &ImageCommand,
) -> Result<Code, Failure> {
    let service = ServiceName::new(config.service()?)?;
    if let ImageCommand::Import(args) = command {
        return import::import(config, out, &service, args).await;
    }
    let catalog = Catalog::open(config).await?;
    let images = catalog.images();
    match command {
        ImageCommand::List { .. } => {
            let live = catalog.live_fleets(&service).await?;
            let mut all = images.list(&service).await?;
            all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
            let rows: Vec<ImageRow> = all.iter().map(|i| row(i, &live)).collect();
            if out.json {
                Document::Images(ImagesDoc {
                    service: service.to_string(),
                    images: rows,
                })
                .print();
            } else {
                print_table(&service, &rows);
            }
        }
        ImageCommand::Show { image, .. } => {
            let found = images.resolve(&service, &image_ref(image)).await?;
            let live = fleets_if_known(&catalog, &service, out).await?;
            let local = local_details(&catalog, &service, &found).await?;
            print_one(
                out,
                &service,
                ImageAction::Shown,
                row(&found, &live),
                local,
                None,
            );
        }
        ImageCommand::Label { image, labels, .. } => {
            let labels = parse_pairs("KEY=VALUE", labels)?;
            let found = images.resolve(&service, &image_ref(image)).await?;
            images.label(&service, &found.id, &labels).await?;
            let found = images
                .resolve(&service, &immutable_core::ImageRef::Id(found.id.clone()))
                .await?;
            let live = fleets_if_known(&catalog, &service, out).await?;
            print_one(
                out,
                &service,
                ImageAction::Labelled,
                row(&found, &live),
                None,
                None,
            );
        }
        ImageCommand::Retire { image, .. } => {
            let found = images.resolve(&service, &image_ref(image)).await?;
            let live = catalog.live_fleets(&service).await?;
            let using = users(&found, &live);
            if !using.is_empty() {
                return Err(Failure::refused(format!(
                    "image {} ({}) is in use by {}: nothing was retired; retire it once no \
                     fleet runs it (after the deployment that replaces it bakes and retires \
                     the old fleet)",
                    found.name,
                    found.id,
                    using
                        .iter()
                        .map(|f| format!("fleet {} of deployment {}", f.id, f.deployment))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            images.retire(&service, &found.id).await?;
            print_one(
                out,
                &service,
                ImageAction::Retired,
                row(&found, &live),
                None,
                None,
            );
        }
        ImageCommand::Import(_) => unreachable!("handled above"),
    }
    Ok(Code::Succeeded)
}

/// `key=value` words, given as `what` (a flag, or the argument's name).
pub(crate) fn parse_pairs(what: &str, words: &[String]) -> Result<Labels, Failure> {
    let mut out = Labels::new();
    for w in words {
        let Some((k, v)) = w.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(Failure::refused(format!(
                "{what} `{w}`: expected KEY=VALUE"
            )));
        };
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok(out)
}

/// The service's live fleets, or none when the backend's options do not say how to read
/// them (AWS without a launch template or instance type): `show` and `label` say so rather
/// than fail.
#[allow(clippy::print_stderr)] // a warning, on stderr
async fn fleets_if_known(
    catalog: &Catalog,
    service: &ServiceName,
    out: Out,
) -> Result<Vec<FleetInfo>, Failure> {
    match catalog.live_fleets(service).await {
        Ok(live) => Ok(live),
        Err(f) if f.code == Code::Refused => {
            if !out.json {
                eprintln!("warning: which fleets use it is not known: {}", f.message);
            }
            Ok(Vec::new())
        }
        Err(f) => Err(f),
    }
}

async fn local_details(
    catalog: &Catalog,
    service: &ServiceName,
    image: &Image,
) -> Result<Option<LocalImageDoc>, Failure> {
    let Catalog::Local { images, .. } = catalog else {
        return Ok(None);
    };
    let d = images.details(service, &image.id).await?;
    Ok(Some(LocalImageDoc {
        command: d.command,
        env: d.env.into_keys().collect(),
        health_path: d.health_path,
        port_var: d.port_var,
        digest: d.digest,
    }))
}

fn row(image: &Image, live: &[FleetInfo]) -> ImageRow {
    ImageRow {
        id: image.id.to_string(),
        name: image.name.clone(),
        created: humantime::format_rfc3339_seconds(image.created_at).to_string(),
        in_use_by: users(image, live)
            .iter()
            .map(|f| f.id.to_string())
            .collect(),
        promoted: image.labels.contains_key(tags::PROMOTED),
        labels: image.labels.clone().into_iter().collect::<BTreeMap<_, _>>(),
    }
}

/// Labels for people: the SDK's own (`immutable:...`: ownership, and the promotion the
/// PROMOTED column shows) left out.
fn user_labels(row: &ImageRow) -> String {
    let shown: Vec<String> = row
        .labels
        .iter()
        .filter(|(k, _)| !k.starts_with("immutable:"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if shown.is_empty() {
        "-".into()
    } else {
        shown.join(",")
    }
}

#[allow(clippy::print_stdout)] // the command's output
fn print_table(service: &ServiceName, rows: &[ImageRow]) {
    if rows.is_empty() {
        println!("service {service} has no images: `image import` brings one in");
        return;
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                r.name.clone(),
                r.created.clone(),
                if r.in_use_by.is_empty() {
                    "-".into()
                } else {
                    r.in_use_by.join(",")
                },
                if r.promoted { "yes" } else { "no" }.into(),
                user_labels(r),
            ]
        })
        .collect();
    let head = ["ID", "NAME", "CREATED", "IN USE BY", "PROMOTED", "LABELS"];
    let mut widths = head.map(str::len);
    for c in &cells {
        for (w, v) in widths.iter_mut().zip(c) {
            *w = (*w).max(v.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        let mut s = String::new();
        for (i, (v, w)) in c.iter().zip(widths).enumerate() {
            if i == 5 {
                s.push_str(v);
            } else {
                s.push_str(&format!("{v:<w$}  "));
            }
        }
        s
    };
    println!("{}", line(head));
    for c in &cells {
        println!("{}", line(c.each_ref().map(String::as_str)));
    }
}

#[allow(clippy::print_stdout)] // the command's output
fn print_one(
    out: Out,
    service: &ServiceName,
    action: ImageAction,
    image: ImageRow,
    local: Option<LocalImageDoc>,
    packer: Option<PackerDoc>,
) {
    if out.json {
        Document::Image(ImageDoc {
            action,
            service: service.to_string(),
            image,
            local,
            packer,
        })
        .print();
        return;
    }
    let verb = match action {
        ImageAction::Shown => "",
        ImageAction::Labelled => "labelled ",
        ImageAction::Retired => "retired ",
        ImageAction::Imported => "imported ",
    };
    println!("{verb}image {} of {service}: {}", image.name, image.id);
    if matches!(action, ImageAction::Retired) {
        return;
    }
    println!("  created    {}", image.created);
    match image.labels.get(tags::PROMOTED) {
        Some(by) => println!("  promoted   yes (by deployment {by})"),
        None => println!("  promoted   no"),
    }
    if !image.in_use_by.is_empty() {
        println!("  in use by  {}", image.in_use_by.join(", "));
    }
    println!("  labels     {}", user_labels(&image));
    if let Some(p) = packer {
        println!("  from       Packer build {} in {}", p.build, p.region);
    }
    if let Some(l) = local {
        let words: Vec<String> = l
            .command
            .iter()
            .map(|w| shlex::try_quote(w).map_or_else(|_| w.clone(), |q| q.into_owned()))
            .collect();
        println!("  command    {}", words.join(" "));
        for name in &l.env {
            println!("  env        {name} (value not shown)");
        }
        if let Some(p) = &l.health_path {
            println!("  health     {p}");
        }
        if let Some(v) = &l.port_var {
            println!("  port var   {v} (and PORT)");
        }
        println!("  digest     sha256:{}", l.digest);
    }
}
