//! The build context of a [`ScratchImage`](super::ScratchImage): which files go into the
//! image (the executable, and the shared libraries `ldd` lists), the Dockerfile that copies
//! them, and the tar archive holding both, all in memory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use immutable_core::{BoxError, Error, Result};

/// Where the files of the image sit in the context; the Dockerfile copies this directory to `/`.
pub(super) const ROOTFS: &str = "rootfs";

/// Where the executable lands in the image.
pub(super) const APP_DIR: &str = "/app";

/// One file of the image: where it lands, where its bytes come from, its mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// Its absolute path in the image.
    pub(super) in_image: PathBuf,
    /// The file read for it, symbolic links resolved.
    pub(super) source: PathBuf,
    /// Its permission bits.
    pub(super) mode: u32,
}

/// The files of the image: the executable at `/app/<name>`, then each library `ldd` lists at
/// the path it gives.
pub(super) fn entries(binary: &Path, name: &str) -> Result<Vec<Entry>> {
    let mut entries = vec![Entry {
        in_image: Path::new(APP_DIR).join(name),
        source: canonical(binary)?,
        mode: 0o755,
    }];
    for library in shared_libraries(binary)? {
        let source = canonical(&library)?;
        let mode = std::fs::metadata(&source)
            .map_err(|e| io_error("cannot read", &source, e))?
            .permissions()
            .mode()
            & 0o777;
        entries.push(Entry {
            in_image: library,
            source,
            mode,
        });
    }
    Ok(entries)
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| io_error("cannot resolve", path, e))
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Provider {
        message: format!("{what} {}: {e}", path.display()),
        source: Some(Box::new(e) as BoxError),
    }
}

/// The shared libraries `binary` needs, the dynamic loader among them, as `ldd` lists them.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let output = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| Error::Provider {
            message: format!(
                "cannot run ldd to list the shared libraries of {}: {e}; ldd comes with \
                 glibc (Debian's libc-bin)",
                binary.display()
            ),
            source: Some(Box::new(e) as BoxError),
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // A static executable that is not position-independent: nothing to copy.
        if stderr.contains("not a dynamic executable") {
            return Ok(Vec::new());
        }
        return Err(Error::provider(format!(
            "ldd {} failed ({}): {}",
            binary.display(),
            output.status,
            stderr.trim()
        )));
    }
    parse_ldd(&stdout).map_err(|missing| {
        Error::invalid(
            "binary",
            format!(
                "{} needs {missing}, which the dynamic loader does not find on this machine",
                binary.display()
            ),
        )
    })
}

/// The absolute paths in `ldd`'s output, in its order; the first library it cannot find is
/// the error.
///
/// Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`, or
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` for the loader; the kernel's vDSO
/// (`linux-vdso.so.1 (0x...)`) has no file, and a static executable says `statically linked`.
pub(super) fn parse_ldd(output: &str) -> std::result::Result<Vec<PathBuf>, String> {
    let mut libraries = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, target) = match line.split_once("=>") {
            Some((name, target)) => (name.trim(), target.trim()),
            None => (line, line),
        };
        if target.starts_with("not found") {
            return Err(name.to_owned());
        }
        let path = target.split(" (").next().unwrap_or(target).trim();
        if path.starts_with('/') {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

/// The Dockerfile: everything under `rootfs/` copied to `/`, the environment, and the
/// executable with its arguments as the entrypoint.
pub(super) fn dockerfile(entrypoint: &[String], env: &BTreeMap<String, String>) -> String {
    let mut text = format!("FROM scratch\nCOPY {ROOTFS}/ /\n");
    for (key, value) in env {
        text.push_str(&format!("ENV {key}=\"{}\"\n", escape_env(value)));
    }
    let exec_form = serde_json::to_string(entrypoint).expect("strings encode as JSON");
    text.push_str(&format!("ENTRYPOINT {exec_form}\n"));
    text
}

/// A value inside a Dockerfile's double quotes: `"`, `$` and `\` escaped, so it is taken
/// literally (no variable is expanded).
fn escape_env(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '"' | '$' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The tar archive of the context: `Dockerfile`, and each entry under `rootfs/`. Owner root,
/// modification time zero, so the same files give the same archive (and the daemon's cache
/// answers a rebuild).
pub(super) fn archive(dockerfile: &str, entries: &[Entry]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    append(
        &mut tar,
        Path::new("Dockerfile"),
        0o644,
        dockerfile.as_bytes(),
    )?;
    for entry in entries {
        let bytes =
            std::fs::read(&entry.source).map_err(|e| io_error("cannot read", &entry.source, e))?;
        let relative = entry.in_image.strip_prefix("/").unwrap_or(&entry.in_image);
        append(
            &mut tar,
            &Path::new(ROOTFS).join(relative),
            entry.mode,
            &bytes,
        )?;
    }
    tar.into_inner().map_err(|e| {
        io_error(
            "cannot finish the build context of",
            Path::new("Dockerfile"),
            e,
        )
    })
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &Path, mode: u32, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .map_err(|e| io_error("cannot add to the build context:", path, e))
}
