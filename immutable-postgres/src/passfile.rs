//! Password files in the `~/.pgpass` format: `hostname:port:database:username:password`
//! lines, `*` matching anything, `\:` and `\\` escaping, `#` starting a comment. The first
//! line that matches wins.

use std::path::Path;

use immutable_core::{Error, Result};

/// What a line must match.
#[derive(Debug)]
pub(crate) struct Key<'a> {
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    pub(crate) database: &'a str,
    pub(crate) user: &'a str,
}

/// The password of the first line of `path` that matches `key`. A file that does not
/// exist has none, unless it was `named` (by the URL, the builder or `PGPASSFILE`), which
/// is an error, as is a file readable by group or others.
pub(crate) fn lookup(path: &Path, key: &Key<'_>, named: bool) -> Result<Option<String>> {
    let refuse =
        |reason: String| Error::invalid("passfile", format!("{}: {reason}", path.display()));
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => return Ok(None),
        Err(e) => return Err(refuse(format!("cannot read it: {e}"))),
    };
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(refuse(
                "is readable by group or others: chmod 600 it (as libpq requires)".into(),
            ));
        }
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    Ok(text.lines().find_map(|line| matching(line, key)))
}

/// The password of `line` if it matches `key`.
fn matching(line: &str, key: &Key<'_>) -> Option<String> {
    if line.trim_start().starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let fields = split(line);
    let [host, port, database, user, password] = fields.as_slice() else {
        return None;
    };
    let port_text = key.port.to_string();
    let fits = |field: &str, want: &str| field == "*" || field == want;
    (fits(host, key.host)
        && fits(port, &port_text)
        && fits(database, key.database)
        && fits(user, key.user))
    .then(|| password.clone())
}

/// The fields of a line, unescaped; the fifth takes the rest of the line.
fn split(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key<'static> {
        Key {
            host: "db.internal",
            port: 5432,
            database: "immutable",
            user: "deploy",
        }
    }

    #[test]
    fn the_first_matching_line_wins_with_wildcards_and_escapes() {
        let lines = "# comment\nother:5432:immutable:deploy:no\n\
                     db.internal:*:immutable:deploy:p\\:w\\\\d:x\n*:*:*:*:fallback\n";
        let found = lines.lines().find_map(|l| matching(l, &key()));
        assert_eq!(found.as_deref(), Some("p:w\\d:x"));
        assert_eq!(matching("*:*:*:*:any", &key()).as_deref(), Some("any"));
        assert_eq!(matching("db.internal:5433:*:*:no", &key()), None);
    }

    #[test]
    fn a_file_open_to_others_is_refused_and_a_missing_default_is_no_password() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = lookup(&path, &key(), true).unwrap_err();
        assert!(e.to_string().contains("chmod 600"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            lookup(&path, &key(), true).unwrap().as_deref(),
            Some("secret")
        );
        let missing = dir.path().join("none");
        assert_eq!(lookup(&missing, &key(), false).unwrap(), None);
        assert!(lookup(&missing, &key(), true).is_err());
    }
}
