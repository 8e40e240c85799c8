//! The arguments of `immutable store ...`: the journal itself.

use clap::Subcommand;

/// `immutable store ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Create the journal's schema in a PostgreSQL database (`--store postgres://...`), or
    /// bring it to this version: once per database and version, before runners use it. Safe
    /// to run again, and from several places at once. The database must exist (createdb).
    Migrate,
}
