//! A deployment's events as lines and progress bars (health waits, pauses, approval gates,
//! the bake), or as JSON lines for scripts.

use std::time::{Duration, Instant};

use immutable_core::{DeploymentId, Engine, Event, EventKind, Phase, Step};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// Follows one engine's events on a task of its own.
pub(crate) struct Progress {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    /// The deployment followed, once an event named it.
    pub(crate) id: watch::Receiver<Option<DeploymentId>>,
}

/// What the renderer needs to know.
pub(crate) struct View {
    pub(crate) json: bool,
    /// The bake time, for the bake's bar.
    pub(crate) bake: Duration,
    /// `-q`: no progress lines or bars (JSON lines are still printed).
    pub(crate) quiet: bool,
    /// This invocation, for the commands it suggests.
    pub(crate) cli: crate::invocation::Invocation,
}

impl Progress {
    /// Subscribes to `engine`'s events and renders them until the engine's run ends.
    pub(crate) fn start(engine: &Engine, view: View, id: Option<DeploymentId>) -> Progress {
        let rx = engine.events();
        let (tx, id_rx) = watch::channel(id);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(render(rx, view, tx, stopped));
        Progress {
            task,
            stop: Some(stop),
            id: id_rx,
        }
    }

    /// Prints the events still queued and clears the bar. The run emits its events before it
    /// returns, so after it returned every one of them is queued.
    pub(crate) async fn finish(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// The one bar shown at a time.
struct Bars {
    multi: MultiProgress,
    bar: Option<(ProgressBar, Timer)>,
    view: View,
    start: Instant,
}

/// How a bar moves: by health reports, or with the clock.
#[derive(Clone, Copy, PartialEq)]
enum Timer {
    Health,
    Clock(Instant),
}

async fn render(
    mut rx: mpsc::UnboundedReceiver<Event>,
    view: View,
    id: watch::Sender<Option<DeploymentId>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut bars = Bars {
        multi: MultiProgress::new(),
        bar: None,
        view,
        start: Instant::now(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(e) => {
                    id.send_if_modified(|id| {
                        let new = id.is_none();
                        id.get_or_insert_with(|| e.deployment.clone());
                        new
                    });
                    bars.show(&e);
                }
                None => break,
            },
            _ = tick.tick() => bars.tick(),
            _ = &mut stopped => {
                while let Ok(e) = rx.try_recv() {
                    bars.show(&e);
                }
                break;
            }
        }
    }
    bars.clear();
}

impl Bars {
    fn line(&self, text: &str) {
        if self.multi.is_hidden() {
            println!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn show(&mut self, e: &Event) {
        if self.view.json {
            let event = crate::output::core(e);
            crate::output::Document::Event { event }.print();
            return;
        }
        if self.view.quiet {
            return;
        }
        let t = self.start.elapsed().as_secs_f64();
        match &e.kind {
            EventKind::StepStarted { .. } | EventKind::StepFinished { note: None, .. } => {}
            EventKind::Planned { .. } => {
                self.line(&format!(
                    "[{t:7.1}s] deployment {} of {}: {}",
                    e.deployment, e.service, e.kind
                ));
            }
            EventKind::ApprovalRequested { .. } => {
                let id = crate::invocation::sh(e.deployment.as_str());
                let cli = &self.view.cli;
                self.line(&format!(
                    "[{t:7.1}s] {}: approve with `{}`, or reject with `{}`",
                    e.kind,
                    cli.command("approve", &[&id]),
                    cli.command("reject", &[&id])
                ));
            }
            kind => self.line(&format!("[{t:7.1}s] {kind}")),
        }
        self.bar_for(&e.kind);
    }

    /// Starts, moves or ends the bar an event calls for.
    fn bar_for(&mut self, kind: &EventKind) {
        match kind {
            EventKind::HealthProgress {
                healthy, needed, ..
            } => {
                if !matches!(self.bar, Some((_, Timer::Health))) {
                    self.begin(*needed as u64, Timer::Health, "healthy", "{pos}/{len}");
                }
                if let Some((bar, _)) = &self.bar {
                    bar.set_position((*healthy).min(*needed) as u64);
                }
            }
            EventKind::StepStarted {
                step: Step::Pause { duration },
                ..
            } => self.begin_clock(*duration, "pause"),
            EventKind::ApprovalRequested { timeout, .. } => {
                self.begin_clock(*timeout, "waiting for approval")
            }
            EventKind::PhaseEntered { phase: Phase::Bake } => {
                self.begin_clock(self.view.bake, "bake");
            }
            EventKind::PhaseEntered { .. }
            | EventKind::StepFinished { .. }
            | EventKind::Approved
            | EventKind::Promoted
            | EventKind::Rejected { .. }
            | EventKind::RollbackStarted { .. } => self.clear(),
            _ => {}
        }
    }

    fn begin_clock(&mut self, d: Duration, what: &str) {
        let secs = d.as_secs().max(1);
        self.begin(secs, Timer::Clock(Instant::now()), what, "{pos}s/{len}s");
    }

    fn begin(&mut self, len: u64, timer: Timer, what: &str, counts: &str) {
        self.clear();
        let template = format!("{{msg:>20}} [{{bar:40}}] {counts}");
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(len).with_style(style));
        bar.set_message(what.to_owned());
        self.bar = Some((bar, timer));
    }

    fn tick(&mut self) {
        if let Some((bar, Timer::Clock(since))) = &self.bar {
            bar.set_position(since.elapsed().as_secs().min(bar.length().unwrap_or(0)));
        }
    }

    fn clear(&mut self) {
        if let Some((bar, _)) = self.bar.take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }
}
