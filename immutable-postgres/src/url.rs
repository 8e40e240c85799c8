//! `postgres://` URLs as the store shows them: never with their password.

use std::fmt;

use tokio_postgres::config::Host;

/// `url` with the password of its user part (`user:password@`) replaced by `***`, for
/// messages about a URL that may not even parse. A string that is not a URL is returned
/// as it is, but for everything after a `:` before an `@`.
///
/// ```
/// assert_eq!(
///     immutable_postgres::redact("postgres://deploy:s3cret@db:5432/immutable"),
///     "postgres://deploy:***@db:5432/immutable"
/// );
/// assert_eq!(
///     immutable_postgres::redact("postgres://deploy@db/immutable"),
///     "postgres://deploy@db/immutable"
/// );
/// ```
pub fn redact(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    // The user part ends at the last `@` before the path: a password may hold `/`, `?` or `@`
    // when it is not percent-encoded, so look for the `@` first.
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = rest.split_at(at);
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => userinfo.to_owned(),
    };
    let query = redact_password_param(host);
    format!("{scheme}{redacted}{query}")
}

/// A `password=` query parameter's value replaced by `***`.
fn redact_password_param(rest: &str) -> String {
    let Some((path, query)) = rest.split_once('?') else {
        return rest.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some(("password", _)) => "password=***".to_owned(),
            _ => kv.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

/// The parameters of a URL that are the store's, not tokio-postgres's.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct OwnParams {
    /// `passfile`: tokio-postgres does not read password files itself.
    pub(crate) passfile: Option<std::path::PathBuf>,
    /// `schema`: where the journal's tables are.
    pub(crate) schema: Option<String>,
}

/// The URL without the store's own parameters, and their (percent-decoded) values.
pub(crate) fn split_params(url: &str) -> Result<(String, OwnParams), String> {
    let mut own = OwnParams::default();
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), own));
    };
    let mut kept = Vec::new();
    for kv in query.split('&') {
        match kv.split_once('=') {
            Some(("passfile", value)) => own.passfile = Some(decode(value)?.into()),
            Some(("schema", value)) => own.schema = Some(decode(value)?),
            _ => kept.push(kv),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, own))
}

fn decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in passfile={value}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("passfile={value} is not UTF-8"))
}

/// A parsed configuration shown as `postgres://user@host:port/database`.
pub(crate) struct Redacted<'a>(pub(crate) &'a tokio_postgres::Config);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pg = self.0;
        write!(f, "postgres://{}@", pg.get_user().unwrap_or_default())?;
        let ports = pg.get_ports();
        for (i, host) in pg.get_hosts().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match host {
                Host::Tcp(name) => f.write_str(name)?,
                Host::Unix(dir) => write!(f, "[{}]", dir.display())?,
            }
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/{}", pg.get_dbname().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_left_out_wherever_they_stand() {
        for (url, want) in [
            ("postgres://u:pw@h/db", "postgres://u:***@h/db"),
            ("postgresql://u:p@ss/w@h:1/db", "postgresql://u:***@h:1/db"),
            (
                "postgres://u@h/db?password=pw&x=1",
                "postgres://u@h/db?password=***&x=1",
            ),
            ("postgres://h/db", "postgres://h/db"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn the_stores_own_parameters_are_taken_out() {
        let (url, own) =
            split_params("postgres://u@h/db?passfile=%2Fetc%2Fpg&x=1&schema=team_a").unwrap();
        assert_eq!(url, "postgres://u@h/db?x=1");
        assert_eq!(own.passfile.unwrap(), std::path::Path::new("/etc/pg"));
        assert_eq!(own.schema.as_deref(), Some("team_a"));
        let (url, own) = split_params("postgres://u@h/db").unwrap();
        assert_eq!(
            (url.as_str(), own),
            ("postgres://u@h/db", OwnParams::default())
        );
    }

    #[test]
    fn a_parsed_url_is_shown_without_its_password() {
        let pg: tokio_postgres::Config = "postgres://u:secret@h1:5433,h2/db".parse().unwrap();
        assert_eq!(Redacted(&pg).to_string(), "postgres://u@h1:5433,h2:5432/db");
    }
}
