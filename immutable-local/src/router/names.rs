//! Names that reach HAProxy's runtime API, and the rules that keep one service's backends
//! apart from every other service's.
//!
//! Runtime-API commands are lines of words separated by spaces, several per request joined
//! by `;`: a name is safe in them only if it is one word HAProxy accepts as a proxy or server
//! name. Every name is checked where it enters (the builder, the instance addresses, the
//! state files) before any command is built from it.

use immutable_core::{Error, Result, ServiceName};

/// The most characters of a server name the router sends.
const MAX_SERVER_NAME: usize = 100;

/// Whether HAProxy takes `name` as a proxy or server name: letters, digits, `-`, `_`, `.`
/// and `:` (HAProxy's own rule), so it is one word of a command and cannot end it.
pub(crate) fn is_haproxy_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVER_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// Whether `id` is a plain id: letters, digits, `-`, `_` and `.`, at most 128 characters.
pub(crate) fn is_plain_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The preview backend the router looks for when a service's backends are not configured:
/// `<service>:preview`. The `:` is outside the service grammar, so it is never a service's
/// own backend.
pub(crate) fn default_preview(service: &ServiceName) -> String {
    service.derived("preview")
}

/// Checks one service's backends against HAProxy's rules and against the names any service
/// may take: a live backend is a name no derivation makes (no `:`), and a preview backend is
/// a name no service can have, since by default a service's live backend is named after it.
/// A preview backend named like a service could be that service's live backend: candidates
/// for preview would take its live traffic.
///
/// # Errors
/// [`Error::InvalidInput`] naming `backend` or `preview_backend`, with what to rename.
pub(crate) fn check_backends(
    service: &ServiceName,
    live: &str,
    preview: Option<&str>,
) -> Result<()> {
    if !is_haproxy_name(live) || live.contains(':') {
        return Err(Error::invalid(
            "backend",
            format!(
                "`{live}` of service `{service}` is not a live backend name: letters, digits, \
                 '-', '_' and '.' (':' is kept for names derived from services, such as \
                 preview backends)"
            ),
        ));
    }
    let Some(preview) = preview else {
        return Ok(());
    };
    if !is_haproxy_name(preview) {
        return Err(Error::invalid(
            "preview_backend",
            format!("`{preview}` of service `{service}` is not a valid HAProxy backend name"),
        ));
    }
    if ServiceName::check(preview).is_ok() || preview == live {
        return Err(Error::invalid(
            "preview_backend",
            format!(
                "`{preview}` of service `{service}` could be the live backend of a service \
                 named `{preview}`, whose traffic would then reach preview candidates; name \
                 the preview backend `{}`",
                default_preview(service)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_separators_and_spaces_are_never_names() {
        for bad in ["", "a b", "a;b", "a/b", "a\nb", "a#b", &"a".repeat(101)] {
            assert!(!is_haproxy_name(bad), "{bad:?}");
        }
        assert!(is_haproxy_name("fl-0a1b2c3d4e5f6a7b-0"));
        assert!(is_haproxy_name("web:preview"));
    }

    #[test]
    fn a_preview_backend_is_never_a_name_a_service_could_serve_from() {
        let web = ServiceName::new("web").unwrap();
        assert!(check_backends(&web, "web", Some("web:preview")).is_ok());
        assert!(check_backends(&web, "web", None).is_ok());
        for (live, preview, field) in [
            ("web", Some("web-preview"), "preview_backend"),
            ("web", Some("web"), "preview_backend"),
            ("web", Some("api"), "preview_backend"),
            ("web:preview", None, "backend"),
            ("web;x", None, "backend"),
        ] {
            match check_backends(&web, live, preview) {
                Err(Error::InvalidInput { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{live} {preview:?}: {other:?}"),
            }
        }
    }
}
