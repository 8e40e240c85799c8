//! Which backend and engine options a command was given: each command flattens the option
//! groups it uses, and [`Command::flags`] gathers them for the configuration.

use super::{
    AwsFlags, BackendArgs, BackendKind, Command, DockerFlags, EngineFlags, ImageCommand,
    LocalFlags, PollFlag, ProxyCommand,
};

/// The backend and engine options a command was given; the groups it does not take are empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub(crate) backend: Option<BackendKind>,
    pub(crate) aws: AwsFlags,
    pub(crate) local: LocalFlags,
    pub(crate) docker: DockerFlags,
    pub(crate) poll: PollFlag,
    pub(crate) engine: EngineFlags,
}

impl Command {
    /// The backend and engine options given to this command.
    pub(crate) fn flags(&self) -> Flags {
        let backend = |b: &BackendArgs| Flags {
            backend: b.choice.backend,
            aws: b.aws.clone(),
            local: b.local.clone(),
            docker: b.docker.clone(),
            ..Flags::default()
        };
        match self {
            Command::Plan { on, .. }
            | Command::Deploy { on, .. }
            | Command::Resume { on, .. }
            | Command::Rollback { on, .. }
            | Command::Gc { on, .. }
            | Command::Adopt { on, .. } => Flags {
                poll: on.poll.clone(),
                engine: on.engine.clone(),
                ..backend(&on.backend)
            },
            Command::Watch { poll, .. } => Flags {
                poll: poll.clone(),
                ..Flags::default()
            },
            Command::Restore {
                choice,
                local,
                docker,
                ..
            } => Flags {
                backend: choice.backend,
                local: local.clone(),
                docker: docker.clone(),
                ..Flags::default()
            },
            Command::DemoSetup { backend: b, .. } | Command::Dashboard { backend: b, .. } => {
                backend(b)
            }
            Command::Image { command } => match command {
                ImageCommand::List { backend: b }
                | ImageCommand::Show { backend: b, .. }
                | ImageCommand::Label { backend: b, .. }
                | ImageCommand::Retire { backend: b, .. } => backend(b),
                ImageCommand::Import(args) => backend(&args.backend),
            },
            Command::Proxy { command } => {
                let at = match command {
                    ProxyCommand::Start(args) => &args.at,
                    ProxyCommand::Status(at) | ProxyCommand::Stop(at) => at,
                };
                Flags {
                    backend: at.choice.backend,
                    local: at.local.clone(),
                    docker: at.docker.clone(),
                    ..Flags::default()
                }
            }
            _ => Flags::default(),
        }
    }
}
