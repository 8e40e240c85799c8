//! What a [`ScratchImage`](super::ScratchImage) accepts, checked before any call to Docker:
//! the executable, the environment's names and values, the tag.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use immutable_core::{BoxError, Error, Result};

/// Checks that `binary` is an executable ELF file, and returns its file name.
///
/// # Errors
/// [`Error::InvalidInput`] on `binary` when it is missing, not a regular file, not
/// executable, not ELF (a script needs an interpreter a scratch image lacks), or has no
/// UTF-8 file name.
pub(super) fn check_binary(binary: &Path) -> Result<String> {
    let invalid = |why: String| Error::invalid("binary", format!("{} {why}", binary.display()));
    let meta = std::fs::metadata(binary).map_err(|e| {
        invalid(format!("cannot be read: {e}")).with_source(Box::new(e) as BoxError)
    })?;
    if !meta.is_file() {
        return Err(invalid("is not a regular file".into()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(invalid("is not executable (no x bit in its mode)".into()));
    }
    let mut magic = [0u8; 4];
    File::open(binary)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| {
            invalid(format!("cannot be read: {e}")).with_source(Box::new(e) as BoxError)
        })?;
    if &magic != b"\x7fELF" {
        return Err(invalid(
            "is not an ELF executable; a script needs an interpreter, which a scratch image \
             lacks"
                .into(),
        ));
    }
    binary
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| invalid("has no UTF-8 file name".into()))
}

/// Checks an environment variable for the Dockerfile: a name of letters, digits and `_`
/// not starting with a digit, and a value on one line.
pub(super) fn check_env(key: &str, value: &str) -> Result<()> {
    let name_ok = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && key.chars().next().is_some_and(|c| !c.is_ascii_digit());
    if !name_ok {
        return Err(Error::invalid(
            "env",
            format!(
                "variable name `{key}` must be letters, digits and `_`, not starting with a \
                 digit"
            ),
        ));
    }
    if value.contains(['\n', '\r', '\0']) {
        return Err(Error::invalid(
            "env",
            format!("the value of `{key}` must be one line, without NUL"),
        ));
    }
    Ok(())
}

/// Checks a tag as the daemon reads it, `repository[:tag]`: repository components of
/// lowercase letters and digits joined by `.`, `_`, `__` or dashes, separated by `/`, the
/// first of several possibly a registry (`host[:port]`, or `localhost`); a tag of at most 128
/// letters, digits, `_`, `.` and `-`, not starting with `.` or `-`. No digest.
///
/// Docker 20.10 answers a malformed tag with a 500, as if the daemon had failed: checked here,
/// it is bad input.
pub(super) fn check_tag(reference: &str) -> Result<()> {
    let invalid = |why: &str| {
        Error::invalid(
            "tag",
            format!(
                "`{reference}` {why}; a tag reads `repository[:tag]`, as `my-app:1.4.2` or \
                 `registry.example:5000/team/my-app`"
            ),
        )
    };
    if reference.contains('@') {
        return Err(invalid("names a digest, which a build cannot give"));
    }
    let (name, tag) = match reference.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (reference, None),
    };
    if let Some(tag) = tag {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let tag_ok = tag.len() <= 128
            && tag.chars().next().is_some_and(word)
            && tag.chars().all(|c| word(c) || c == '.' || c == '-');
        if !tag_ok {
            return Err(invalid(
                "has a tag other than 1 to 128 letters, digits, `_`, `.` and `-`, not starting \
                 with `.` or `-`",
            ));
        }
    }
    if name.is_empty() || name.len() > 255 {
        return Err(invalid("needs a repository name of 1 to 255 characters"));
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let first = components[0];
    if components.len() > 1 && (first.contains(['.', ':']) || first == "localhost") {
        if !is_registry(first) {
            return Err(invalid("names a registry other than `host[:port]`"));
        }
        components.remove(0);
    }
    if !components.iter().all(|c| is_path_component(c)) {
        return Err(invalid(
            "needs repository components of lowercase letters and digits, joined by `.`, `_`, \
             `__` or dashes",
        ));
    }
    Ok(())
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes; a port of digits.
fn is_registry(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// Runs of `[a-z0-9]` joined by one separator each: `.`, `_`, `__`, or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let mut separator = String::new();
    let mut seen_alnum = false;
    for c in component.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            let joined = separator.is_empty()
                || matches!(separator.as_str(), "." | "_" | "__")
                || separator.chars().all(|s| s == '-');
            if !joined {
                return false;
            }
            separator.clear();
            seen_alnum = true;
        } else if matches!(c, '.' | '_' | '-') && seen_alnum {
            separator.push(c);
        } else {
            return false;
        }
    }
    seen_alnum && separator.is_empty()
}
