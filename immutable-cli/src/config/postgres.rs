//! `--store postgres://...`: the URL as given, never shown with its password.

use crate::exit::Failure;

/// A PostgreSQL journal's URL. `Display` and `Debug` show it without its password, so no
/// message, error or printed command echoes it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PgUrl(String);

impl PgUrl {
    /// Whether `s` names a PostgreSQL journal.
    pub(crate) fn is_one(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// Checks `s` as the store does, refusing it naming `--store`.
    pub(crate) fn parse(s: &str) -> Result<PgUrl, Failure> {
        immutable_postgres::PostgresStore::builder(s)
            .map_err(|e| Failure::refused(format!("--store: {}", crate::exit::reason(e))))?;
        Ok(PgUrl(s.to_owned()))
    }

    /// The URL, password and all, for the store alone.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&immutable_postgres::redact(&self.0))
    }
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_never_shown_with_its_password() {
        let url = PgUrl::parse("postgres://deploy:s3cret@db:5432/immutable").unwrap();
        assert_eq!(url.to_string(), "postgres://deploy:***@db:5432/immutable");
        assert!(!format!("{url:?}").contains("s3cret"));
        let e = PgUrl::parse("postgres://deploy:s3cret@db:port/immutable").unwrap_err();
        assert!(e.message.starts_with("--store: "), "{}", e.message);
        assert!(!e.message.contains("s3cret"), "{}", e.message);
        let e = PgUrl::parse("postgres://db/immutable").unwrap_err();
        assert!(e.message.contains("names no user"), "{}", e.message);
    }
}
