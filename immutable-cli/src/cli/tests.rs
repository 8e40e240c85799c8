//! Which command takes which option group.

use clap::Parser;

use super::Cli;

/// One option of each group, with a value.
const BACKEND: &[&str] = &["--backend", "local"];
const AWS: &[&str] = &["--subnets", "a,b"];
const LOCAL: &[&str] = &["--root", "/srv"];
const POLL: &[&str] = &["--poll-interval", "1s"];
const ENGINE: &[&str] = &["--lease-ttl", "5s"];

fn parses(command: &[&str], group: &[&str]) -> bool {
    let mut args = vec!["immutable", "--service", "web"];
    args.extend(command);
    args.extend(group);
    Cli::try_parse_from(&args).is_ok()
}

#[test]
fn each_command_takes_the_option_groups_it_uses_and_refuses_the_others() {
    let groups = [BACKEND, AWS, LOCAL, POLL, ENGINE];
    // The command (with its required arguments), then whether it takes each group.
    let table: &[(&[&str], [bool; 5])] = &[
        (&["plan", "--image", "v2"], [true; 5]),
        (&["deploy", "--image", "v2"], [true; 5]),
        (&["resume", "01jd"], [true; 5]),
        (&["rollback"], [true; 5]),
        (&["gc"], [true; 5]),
        (&["adopt"], [true; 5]),
        (&["demo-setup"], [true, true, true, false, false]),
        (&["restore"], [true, false, true, false, false]),
        (&["watch"], [false, false, false, true, false]),
        (&["status"], [false; 5]),
        (&["approve", "01jd"], [false; 5]),
        (&["reject", "01jd"], [false; 5]),
        (&["promote", "01jd"], [false; 5]),
        (&["abort", "01jd"], [false; 5]),
        (&["history"], [false; 5]),
        (&["halt", "--reason", "r"], [false; 5]),
        (&["lift-halt"], [false; 5]),
        (&["halts"], [false; 5]),
        (&["image", "list"], [true, true, true, false, false]),
        (&["image", "retire", "v1"], [true, true, true, false, false]),
        (
            &["image", "import", "--ami", "ami-1"],
            [true, true, true, false, false],
        ),
        (&["proxy", "start"], [true, false, true, false, false]),
        (&["proxy", "stop"], [true, false, true, false, false]),
        (
            &["init", "--backend", "local"],
            [false, false, true, false, false],
        ),
    ];
    for (command, takes) in table {
        assert!(parses(command, &[]), "{command:?}");
        for (group, takes) in groups.iter().zip(takes) {
            assert_eq!(parses(command, group), *takes, "{command:?} {group:?}");
        }
    }
}

#[test]
fn a_refused_option_exits_2_naming_it() {
    let e = Cli::try_parse_from(["immutable", "approve", "01jd", "--subnets", "x"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("'--subnets'"), "{e}");
}

#[test]
fn the_options_of_every_command_go_before_or_after_it() {
    for args in [
        &[
            "immutable",
            "--service",
            "web",
            "--store",
            "file:/j",
            "-q",
            "status",
        ][..],
        &[
            "immutable",
            "status",
            "--service",
            "web",
            "--store",
            "file:/j",
            "-q",
        ],
        &["immutable", "--output", "json", "halts", "-vv"],
    ] {
        assert!(Cli::try_parse_from(args).is_ok(), "{args:?}");
    }
    assert!(Cli::try_parse_from(["immutable", "-q", "-v", "status"]).is_err());
    assert!(Cli::try_parse_from(["immutable", "halt", "web", "--reason", "r"]).is_err());
}
