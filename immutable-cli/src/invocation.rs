//! The command line this process was started with, and the commands printed to run next
//! (`resume ID` after a suspension, `approve ID` at a gate, `lift-halt` after a refusal).
//!
//! A printed command carries the options of this invocation that its own subcommand takes, so
//! that it reaches the same service through the same backend and store: `deploy --backend
//! local --root /srv ...` continues with `resume ID --backend local --root /srv`, and with
//! `approve ID` without them (approve takes no backend options).

use clap::{ArgAction, ArgMatches, CommandFactory, parser::ValueSource};

use crate::cli::Cli;

/// The options given on the command line, by where they belong.
#[derive(Debug, Clone, Default)]
pub(crate) struct Invocation {
    /// Options every command takes (`--service web`), `--output`, `-v` and `-q` aside.
    global: Vec<Given>,
    /// The subcommand's own options (`--root /srv`).
    own: Vec<Given>,
}

/// One option as given: its id and its words (`--subnets a,b`).
#[derive(Debug, Clone)]
struct Given {
    id: String,
    words: Vec<String>,
}

impl Given {
    fn long(&self) -> &str {
        &self.words[0]
    }

    fn words_str(&self) -> impl Iterator<Item = &str> {
        self.words.iter().map(String::as_str)
    }
}

impl Invocation {
    /// The options of `matches` given on the command line (not from the environment or a
    /// default).
    pub(crate) fn new(matches: &ArgMatches) -> Invocation {
        let command = Cli::command();
        let skip = ["output", "verbose", "quiet"];
        let global = given(
            matches,
            command
                .get_arguments()
                .filter(|a| a.is_global_set() && !skip.contains(&a.get_id().as_str())),
        );
        let own = match matches.subcommand() {
            Some((name, sub)) => command
                .find_subcommand(name)
                .map(|c| given(sub, c.get_arguments().filter(|a| !a.is_global_set())))
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Invocation { global, own }
    }

    /// Names the store in every printed command (when it was not named already): the local
    /// backend's default journal is found from `--root`, which the store-only commands do
    /// not take.
    pub(crate) fn naming_store(mut self, store: &str) -> Invocation {
        if !self.global.iter().any(|g| g.id == "store") {
            self.global.push(Given {
                id: "store".into(),
                words: vec!["--store".into(), sh(store)],
            });
        }
        self
    }

    /// `immutable <options> <subcommand> <args> <the subcommand's options>`: the options of
    /// this invocation that `subcommand` takes, except those `args` names itself. `args` are
    /// words as they are printed (quote ids with [`sh`]).
    pub(crate) fn command(&self, subcommand: &str, args: &[&str]) -> String {
        let named = |g: &&Given| !args.contains(&g.long());
        let cli = Cli::command();
        let takes: Vec<String> = cli
            .find_subcommand(subcommand)
            .map(|c| c.get_arguments().map(|a| a.get_id().to_string()).collect())
            .unwrap_or_default();
        let mut words = vec!["immutable"];
        words.extend(self.global.iter().filter(named).flat_map(|g| g.words_str()));
        words.push(subcommand);
        words.extend(args.iter().copied());
        words.extend(
            self.own
                .iter()
                .filter(named)
                .filter(|g| takes.contains(&g.id))
                .flat_map(|g| g.words_str()),
        );
        words.join(" ")
    }
}

/// The long options among `args` that `matches` got from the command line, as words.
fn given<'a>(matches: &ArgMatches, args: impl Iterator<Item = &'a clap::Arg>) -> Vec<Given> {
    let mut out = Vec::new();
    for arg in args {
        let id = arg.get_id().as_str();
        let Some(long) = arg.get_long() else { continue };
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let flag = format!("--{long}");
        let values: Vec<String> = matches
            .get_raw(id)
            .into_iter()
            .flatten()
            .map(|v| v.to_string_lossy().into_owned())
            // A store's URL may hold a password: printed commands never echo it.
            .map(|v| match id {
                "store" => immutable_postgres::redact(&v),
                _ => v,
            })
            .collect();
        let words = match (arg.get_action(), arg.get_value_delimiter()) {
            (ArgAction::SetTrue, _) => vec![flag],
            // A repeatable option without a delimiter (`--docker-host a=... --docker-host
            // b=...`): once per value.
            (ArgAction::Append, None) => {
                values.iter().flat_map(|v| [flag.clone(), sh(v)]).collect()
            }
            (_, delimiter) => vec![
                flag,
                sh(&values.join(&delimiter.unwrap_or(' ').to_string())),
            ],
        };
        out.push(Given {
            id: id.to_owned(),
            words,
        });
    }
    out
}

/// Quotes a word for a POSIX shell when it needs it: every id and name printed inside a
/// command to run next goes through it, since ids come from the store, which is outside data.
pub(crate) fn sh(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:,=@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(args: &[&str]) -> Invocation {
        Invocation::new(&Cli::command().get_matches_from(args))
    }

    #[test]
    fn a_printed_command_keeps_the_options_its_subcommand_takes() {
        let deploy = invocation(&[
            "immutable",
            "--service",
            "web",
            "deploy",
            "--backend",
            "aws",
            "--image",
            "web-v2",
            "--subnets",
            "a,b",
            "--output",
            "json",
            "--listener-arn",
            "arn:aws:x/y z",
            "-v",
        ]);
        assert_eq!(
            deploy.command("resume", &["01jd"]),
            "immutable --service web resume 01jd --backend aws --listener-arn 'arn:aws:x/y z' \
             --subnets a,b"
        );
        assert_eq!(
            deploy.command("approve", &["01jd"]),
            "immutable --service web approve 01jd"
        );
        assert_eq!(
            deploy.command("lift-halt", &["--service", "api"]),
            "immutable lift-halt --service api"
        );
    }

    #[test]
    fn a_repeated_option_is_printed_once_per_value() {
        let deploy = invocation(&[
            "immutable",
            "deploy",
            "--backend",
            "docker",
            "--docker-host",
            "a=unix:///var/run/docker.sock",
            "--image",
            "v2",
            "--docker-host",
            "b=tcp://10.0.0.5:2375",
            "--memory",
            "512m",
        ]);
        assert_eq!(
            deploy.command("resume", &["01jd"]),
            "immutable resume 01jd --backend docker --docker-host a=unix:///var/run/docker.sock \
             --docker-host b=tcp://10.0.0.5:2375 --memory 512m"
        );
    }

    #[test]
    fn the_store_found_from_the_root_is_named_for_the_store_only_commands() {
        let deploy = invocation(&["immutable", "deploy", "--root", "/srv", "--image", "v2"])
            .naming_store("file:/srv/journal");
        assert_eq!(
            deploy.command("approve", &["01jd"]),
            "immutable --store file:/srv/journal approve 01jd"
        );
        assert_eq!(
            deploy.command("resume", &["01jd"]),
            "immutable --store file:/srv/journal resume 01jd --root /srv"
        );
    }

    #[test]
    fn a_password_in_the_store_url_is_never_echoed() {
        let deploy = invocation(&[
            "immutable",
            "--store",
            "postgres://deploy:s3cret@db:5432/journal",
            "deploy",
            "--image",
            "v2",
        ]);
        assert_eq!(
            deploy.command("approve", &["01jd"]),
            "immutable --store 'postgres://deploy:***@db:5432/journal' approve 01jd"
        );
    }

    #[test]
    fn ids_are_quoted_only_when_they_need_it() {
        assert_eq!(
            sh("01jd7w5kq2h3n4p5r6s7t8v9wx"),
            "01jd7w5kq2h3n4p5r6s7t8v9wx"
        );
        assert_eq!(sh("it's"), r"'it'\''s'");
    }
}
