//! `immutable store migrate`: a PostgreSQL journal's schema, created or upgraded.

use immutable_postgres::PostgresStore;

use crate::cli::StoreCommand;
use crate::config::{Config, StoreSpec};
use crate::exit::{Code, Failure};
use crate::output::{Document, MigrationRow, StoreMigrateDoc};

/// Runs a `store` subcommand. The store is not opened first: opening a PostgreSQL journal
/// whose schema is not migrated is refused.
pub(crate) async fn store(
    config: &Config,
    json: bool,
    command: &StoreCommand,
) -> Result<Code, Failure> {
    match command {
        StoreCommand::Migrate => migrate(config, json).await,
    }
}

async fn migrate(config: &Config, json: bool) -> Result<Code, Failure> {
    let StoreSpec::Postgres(url) = &config.store else {
        return Err(Failure::refused(format!(
            "`store migrate` is for a PostgreSQL journal (--store postgres://user@host:port/\
             database); {} needs no migration",
            config.store
        )));
    };
    let store = PostgresStore::builder(url.as_str())?.build()?;
    let done = store.migrate().await?;
    if json {
        Document::StoreMigrate(StoreMigrateDoc {
            store: url.to_string(),
            schema: store.schema().to_owned(),
            from: done.from,
            to: done.to,
            applied: done
                .applied
                .iter()
                .map(|(version, name)| MigrationRow {
                    version: *version,
                    name: (*name).to_owned(),
                })
                .collect(),
        })
        .print();
    } else if done.applied.is_empty() {
        println!(
            "{url}: schema {} is at version {}: nothing to migrate",
            store.schema(),
            done.to
        );
    } else {
        println!(
            "{url}: migrated schema {} from version {} to {}",
            store.schema(),
            done.from,
            done.to
        );
        for (version, name) in &done.applied {
            println!("  {version}  {name}");
        }
    }
    Ok(Code::Succeeded)
}
