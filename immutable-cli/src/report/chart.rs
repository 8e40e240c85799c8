//! Pictures of deployments, drawn from the journal's timeline with plotters' SVG backend (a
//! well-kept charting crate; with no font backend it writes text as SVG `<text>` and needs no
//! system fonts, so pictures look the same on every machine and in CI).
//!
//! [`deployment_svg`] puts one deployment on one time axis: the weight on the new fleet
//! ([`WEIGHT`], left axis, percent), healthy instances of the old and the new fleet
//! ([`BLUE`], [`GREEN`], right axis), check results as dots on the weight line ([`PASS`],
//! [`FAIL`]), and operator actions ([`ACTION`]), halts ([`HALT`]) and the rollback
//! ([`ROLLBACK`]) as labelled vertical lines. The colours are the legend, and how a test (or a
//! tool) reads the marks back.
//!
//! [`history_svg`] draws a service's time from launch to healthy, deployment by deployment.

use std::time::SystemTime;

use immutable_core::{DeploymentRecord, Mark, Side};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The weight on the new fleet.
pub(crate) const WEIGHT: RGBColor = RGBColor(0x82, 0x50, 0xdf);
/// Healthy instances of the old fleet.
pub(crate) const BLUE: RGBColor = RGBColor(0x09, 0x69, 0xda);
/// Healthy instances of the new fleet.
pub(crate) const GREEN: RGBColor = RGBColor(0x1a, 0x7f, 0x37);
/// A check that passed.
pub(crate) const PASS: RGBColor = RGBColor(0x2d, 0xa4, 0x4e);
/// A check that failed.
pub(crate) const FAIL: RGBColor = RGBColor(0xcf, 0x22, 0x2e);
/// An operator's command.
pub(crate) const ACTION: RGBColor = RGBColor(0x9a, 0x67, 0x00);
/// A halt or its lifting.
pub(crate) const HALT: RGBColor = RGBColor(0x57, 0x60, 0x6a);
/// The start of a rollback.
pub(crate) const ROLLBACK: RGBColor = RGBColor(0xa4, 0x0e, 0x26);

const SIZE: (u32, u32) = (960, 360);

/// One deployment's timeline, as an SVG document.
pub(crate) fn deployment_svg(rec: &DeploymentRecord) -> String {
    let mut out = String::new();
    let drawn = draw_deployment(
        rec,
        SVGBackend::with_string(&mut out, SIZE).into_drawing_area(),
    );
    match drawn {
        Ok(()) => out,
        Err(e) => unavailable(&e.to_string()),
    }
}

/// A service's time from launch to healthy, oldest deployment first (`records` may come
/// newest first), as an SVG document.
pub(crate) fn history_svg(records: &[DeploymentRecord]) -> String {
    let mut out = String::new();
    let area = SVGBackend::with_string(&mut out, (SIZE.0, 240)).into_drawing_area();
    match draw_history(records, area) {
        Ok(()) => out,
        Err(e) => unavailable(&e.to_string()),
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type Drawn = Result<(), Box<dyn std::error::Error + 'static>>;

/// Seconds from the deployment's start to `at`.
fn secs(rec: &DeploymentRecord, at: SystemTime) -> f64 {
    at.duration_since(rec.created_at)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A series that holds its value until the next change: (time, value) corners.
fn steps(points: &[(f64, f64)], end: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len() * 2 + 1);
    for (i, &(t, v)) in points.iter().enumerate() {
        if i > 0 {
            out.push((t, points[i - 1].1));
        }
        out.push((t, v));
    }
    if let Some(&(_, v)) = points.last() {
        out.push((end, v));
    }
    out
}

/// The weight on the new fleet at each change, from 0 at the start.
fn weight_points(rec: &DeploymentRecord) -> Vec<(f64, f64)> {
    let mut points = vec![(0.0, 0.0)];
    for e in rec.timeline.entries() {
        if let Mark::Weight { percent } = e.mark {
            points.push((secs(rec, e.at), f64::from(percent)));
        }
    }
    points
}

fn health_points(rec: &DeploymentRecord, side: Side) -> Vec<(f64, f64)> {
    rec.timeline
        .entries()
        .iter()
        .filter_map(|e| match e.mark {
            Mark::Health {
                side: s, healthy, ..
            } if s == side => Some((secs(rec, e.at), healthy as f64)),
            _ => None,
        })
        .collect()
}

/// Each check as (time, weight in force when it ran, passed), in timeline order.
fn check_points(rec: &DeploymentRecord) -> Vec<(f64, f64, bool)> {
    let mut weight = 0.0;
    let mut out = Vec::new();
    for e in rec.timeline.entries() {
        match e.mark {
            Mark::Weight { percent } => weight = f64::from(percent),
            Mark::Check { passed, .. } => out.push((secs(rec, e.at), weight, passed)),
            _ => {}
        }
    }
    out
}

/// The labelled vertical lines: commands, halts, the rollback.
fn annotations(rec: &DeploymentRecord) -> Vec<(f64, RGBColor, String)> {
    rec.timeline
        .entries()
        .iter()
        .filter_map(|e| {
            let (colour, label) = match &e.mark {
                Mark::Command { command, by, .. } => (ACTION, format!("{command} ({by})")),
                Mark::Halted { by, .. } => (HALT, format!("halted by {by}")),
                Mark::HaltLifted => (HALT, "halt lifted".to_owned()),
                Mark::RollbackStarted { .. } => (ROLLBACK, "rollback".to_owned()),
                _ => return None,
            };
            Some((secs(rec, e.at), colour, shorten(&label, 40)))
        })
        .collect()
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

fn draw_deployment(rec: &DeploymentRecord, area: Area<'_>) -> Drawn {
    area.fill(&WHITE)?;
    let end = rec
        .timeline
        .entries()
        .iter()
        .map(|e| secs(rec, e.at))
        .fold(1.0_f64, f64::max);
    let weights = weight_points(rec);
    let (blue, green) = (
        health_points(rec, Side::Blue),
        health_points(rec, Side::Green),
    );
    let most = blue
        .iter()
        .chain(&green)
        .map(|p| p.1)
        .fold(f64::from(rec.spec.capacity), f64::max)
        .max(1.0)
        .ceil();
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(44)
        .right_y_label_area_size(44)
        .build_cartesian_2d(0.0..end, 0.0..100.0)?
        .set_secondary_coord(0.0..end, 0.0..most + 1.0);
    chart
        .configure_mesh()
        .x_desc("seconds since the deployment began")
        .y_desc("% of traffic on the new fleet")
        .x_label_formatter(&|x| seconds(*x, end))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(WHITE)
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("healthy instances")
        .y_labels(most as usize + 2)
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (points, colour, label) in [
        (&blue, BLUE, "healthy, old fleet"),
        (&green, GREEN, "healthy, new fleet"),
    ] {
        if !points.is_empty() {
            chart
                .draw_secondary_series(LineSeries::new(steps(points, end), colour.stroke_width(2)))?
                .label(label)
                .legend(move |(x, y)| swatch(x, y, colour));
        }
    }
    chart
        .draw_series(LineSeries::new(
            steps(&weights, end),
            WEIGHT.stroke_width(3),
        ))?
        .label("% on the new fleet")
        .legend(|(x, y)| swatch(x, y, WEIGHT));
    chart.draw_series(check_points(rec).into_iter().map(|(t, weight, passed)| {
        let colour = if passed { PASS } else { FAIL };
        Circle::new((t, weight), 5, colour.filled())
    }))?;
    for (i, (t, colour, label)) in annotations(rec).into_iter().enumerate() {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(t, 0.0), (t, 100.0)],
            colour.stroke_width(1),
        )))?;
        let row = 96.0 - 7.0 * (i % 4) as f64;
        // Labels in the right half read leftwards from their line, so none leaves the chart.
        let side = if t > end / 2.0 {
            HPos::Right
        } else {
            HPos::Left
        };
        let font = ("sans-serif", 12)
            .into_font()
            .color(&colour)
            .pos(Pos::new(side, VPos::Top));
        chart.draw_series(std::iter::once(Text::new(label, (t, row), font)))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(HALT)
        .draw()?;
    area.present()?;
    Ok(())
}

/// A time axis label: tenths of a second when the whole axis is short.
fn seconds(x: f64, end: f64) -> String {
    if end < 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// A legend's colour sample: a filled square, so that only the series draw lines.
fn swatch(x: i32, y: i32, colour: RGBColor) -> Rectangle<(i32, i32)> {
    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
}

fn draw_history(records: &[DeploymentRecord], area: Area<'_>) -> Drawn {
    area.fill(&WHITE)?;
    let mut oldest_first: Vec<&DeploymentRecord> = records.iter().collect();
    oldest_first.sort_by(|a, b| a.id.cmp(&b.id));
    let points: Vec<(f64, f64)> = oldest_first
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i as f64 + 1.0, r.time_to_healthy()?.as_secs_f64())))
        .collect();
    let top = points.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(&area)
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(52)
        .build_cartesian_2d(0.5..(oldest_first.len().max(1) as f64 + 0.5), 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("deployment, oldest first")
        .y_desc("seconds from launch to healthy")
        // Deployments are counted: label whole numbers only.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| format!("{y:.1}"))
        .light_line_style(WHITE)
        .draw()?;
    chart.draw_series(LineSeries::new(points.clone(), GREEN.stroke_width(2)))?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, GREEN.filled())))?;
    area.present()?;
    Ok(())
}

/// A picture saying why there is none.
fn unavailable(why: &str) -> String {
    let why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="40"><text x="8" y="24">chart unavailable: {why}</text></svg>"#,
        SIZE.0
    )
}

#[cfg(test)]
mod tests;
