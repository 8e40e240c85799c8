//! `--store postgres://...`: a journal refused until `store migrate` made its schema, then
//! shared by the store-only commands, its password (from PGPASSWORD or the URL) never in
//! any output; a bad URL refused naming `--store`.

use std::time::Duration;

use immutable_testkit::postgres::Postgres;

use crate::common::{Cli, REFUSED, SUCCEEDED};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_postgres_journal_is_migrated_then_shared_and_its_password_never_shown() {
    let pg = Postgres::shared();
    let secret = pg.password().to_owned();
    let schema = pg.schema("cli");
    let url = format!("{}?schema={schema}", pg.url());
    let cli = Cli::new(["--store", url.as_str(), "--service", "web"]).env("PGPASSWORD", &secret);

    let before = cli.run(&["halts"], LIMIT);
    assert_ne!(before.code, SUCCEEDED, "{before:?}");
    assert!(
        before.stderr.contains("immutable store migrate"),
        "{before:?}"
    );

    let migrated = cli.run(&["store", "migrate", "--output", "json"], LIMIT);
    assert_eq!(migrated.code, SUCCEEDED, "{migrated:?}");
    let doc = migrated.json();
    assert_eq!(doc["type"], "store_migrate");
    assert_eq!(
        (doc["from"].as_u64(), doc["to"].as_u64()),
        (Some(0), Some(1))
    );
    assert_eq!(doc["schema"], schema.as_str());
    let again = cli.run(&["store", "migrate"], LIMIT);
    assert_eq!(again.code, SUCCEEDED, "{again:?}");
    assert!(again.stdout.contains("nothing to migrate"), "{again:?}");

    let halted = cli.run(&["halt", "--reason", "bad build"], LIMIT);
    assert_eq!(halted.code, SUCCEEDED, "{halted:?}");
    // The password in the URL instead: the same journal, and it is shown nowhere.
    let with_password = format!("{}?schema={schema}", pg.url_with_password());
    let inline = Cli::new(["--store", with_password.as_str(), "--service", "web"]);
    let halts = inline.run(&["halts", "--output", "json"], LIMIT);
    assert_eq!(halts.code, SUCCEEDED, "{halts:?}");
    assert_eq!(
        halts.json()["halts"].as_array().map(Vec::len),
        Some(1),
        "{halts:?}"
    );
    let unknown = inline.run(&["status", "01jd7w5kq2h3n4p5r6s7t8v9wx"], LIMIT);
    assert_eq!(unknown.code, REFUSED, "{unknown:?}");
    assert!(
        unknown.stderr.contains("postgres://immutable:***@"),
        "{unknown:?}"
    );
    for run in [&before, &migrated, &again, &halted, &halts, &unknown] {
        assert!(
            !run.stdout.contains(&secret) && !run.stderr.contains(&secret),
            "the password was shown: {run:?}"
        );
    }

    let bad = Cli::new(["--store", "postgres://db.internal/journal"]).run(&["halts"], LIMIT);
    assert_eq!(bad.code, REFUSED, "{bad:?}");
    assert!(
        bad.stderr.contains("--store") && bad.stderr.contains("names no user"),
        "{bad:?}"
    );
    let file = Cli::new(["--store", "file:/tmp/unused-journal"]).run(&["store", "migrate"], LIMIT);
    assert_eq!(file.code, REFUSED, "{file:?}");
}
