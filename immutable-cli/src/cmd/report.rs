//! `immutable report`: one deployment drawn on one time axis, into an SVG image or a
//! standalone HTML report (the chart, the steps, the events), from the store alone.

use std::path::PathBuf;

use crate::backend::Ctx;
use crate::cli::ReportArgs;
use crate::exit::{Code, Failure};
use crate::output::{Document, ReportDoc, ReportFormat};
use crate::report::{chart, html};

/// `immutable report ID [--format svg|html] [--out FILE]`.
pub(crate) async fn report(ctx: &Ctx, args: &ReportArgs) -> Result<Code, Failure> {
    let rec = ctx.deployment(&args.id).await?;
    let body = match args.format {
        ReportFormat::Svg => chart::deployment_svg(&rec),
        ReportFormat::Html => html::report(&rec)?,
    };
    let path = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "immutable-report-{}.{}",
            rec.id,
            args.format.extension()
        ))
    });
    std::fs::write(&path, &body).map_err(|e| {
        Failure::refused(format!(
            "cannot write the report to {}: {e} (choose another file with --out)",
            path.display()
        ))
    })?;
    if ctx.json {
        Document::Report(ReportDoc {
            deployment: rec.id.to_string(),
            service: rec.service().to_string(),
            format: args.format,
            path: path.display().to_string(),
            bytes: body.len() as u64,
        })
        .print();
    } else {
        println!(
            "wrote the {} report of deployment {} of {} ({}) to {}",
            args.format.extension(),
            rec.id,
            rec.service(),
            rec.phase,
            path.display()
        );
    }
    Ok(Code::Succeeded)
}
