//! The CLI on moto's server (the test kit's [`Moto`], a server per test: the CLI's requests
//! carry no account, and the recorder is server-wide), and a demo world built by
//! `immutable demo-setup`.

use std::time::Duration;

pub(crate) use immutable_testkit::aws::{Moto, is_read};

use super::Cli;

/// `immutable` pointed at a moto server.
pub(crate) trait MotoCli {
    /// `immutable` on this test's store, for the commands that read only the store.
    fn store_cli(&self, store: &std::path::Path) -> Cli;

    /// `immutable` with this server as its AWS endpoint, and fake credentials.
    fn cli(&self, store: &std::path::Path) -> Cli;

    /// `demo-setup` on moto, then the CLI with the world's flags and quick polls.
    fn demo_cli(&self, store: &std::path::Path) -> Cli;
}

impl MotoCli for Moto {
    fn store_cli(&self, store: &std::path::Path) -> Cli {
        Cli::new([
            "--service",
            "web",
            "--store",
            &format!("file:{}", store.display()),
        ])
    }

    /// `immutable` with this server as its AWS endpoint, and fake credentials.
    fn cli(&self, store: &std::path::Path) -> Cli {
        Cli::new([
            "--backend",
            "aws",
            "--service",
            "web",
            "--endpoint-url",
            &self.url,
            "--region",
            "us-east-1",
            "--store",
            &format!("file:{}", store.display()),
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
    }

    /// `demo-setup` on moto, then the CLI with the world's flags and quick polls.
    fn demo_cli(&self, store: &std::path::Path) -> Cli {
        let setup = self
            .cli(store)
            .run(&["demo-setup", "--output", "json"], Duration::from_secs(60));
        assert_eq!(setup.code, super::SUCCEEDED, "{setup:?}");
        let w = setup.json();
        let mut cli = self.cli(store);
        let subnets: Vec<&str> = w["subnets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        for (flag, value) in [
            ("--listener-arn", w["listener_arn"].as_str().unwrap()),
            (
                "--preview-listener-arn",
                w["preview_listener_arn"].as_str().unwrap(),
            ),
            ("--launch-template", w["launch_template"].as_str().unwrap()),
            ("--vpc-id", w["vpc_id"].as_str().unwrap()),
            ("--subnets", &subnets.join(",")),
            ("--poll-interval", "200ms"),
        ] {
            cli.args.extend([flag.to_owned(), value.to_owned()]);
        }
        cli
    }
}
