//! The build context without Docker: what `ldd` says is parsed right, the files land where
//! the image needs them, bad input is refused before any call to Docker.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use bollard::{API_DEFAULT_VERSION, Docker};
use immutable_core::Error;

use super::context::{self, parse_ldd};
use super::input;
use super::{ScratchImage, is_image_id};

/// The files of a context archive: path, mode and bytes.
fn unpack(archive: &[u8]) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut files = BTreeMap::new();
    let mut tar = tar::Archive::new(archive);
    for entry in tar.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mode = entry.header().mode().unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        files.insert(path, (mode, bytes));
    }
    files
}

/// A client of an address where no daemon listens: any call through it fails as transient.
fn nowhere() -> Docker {
    Docker::connect_with_http("tcp://127.0.0.1:9", 1, API_DEFAULT_VERSION).unwrap()
}

fn invalid_field(e: &Error) -> &str {
    match e {
        Error::InvalidInput { field, .. } => field,
        other => panic!("expected InvalidInput, got {other}"),
    }
}

#[test]
fn ldd_output_gives_the_libraries_and_the_loader_but_not_the_vdso() {
    let output = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                  \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007fca)\n\
                  \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007fcb)\n\
                  \t/lib64/ld-linux-x86-64.so.2 (0x00007fcc)\n";
    assert_eq!(
        parse_ldd(output).unwrap(),
        [
            "/lib/x86_64-linux-gnu/libgcc_s.so.1",
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/ld-linux-x86-64.so.2",
        ]
        .map(PathBuf::from)
    );
    assert_eq!(
        parse_ldd("\tstatically linked\n").unwrap(),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn a_library_ldd_does_not_find_is_named() {
    let output = "\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n\
                  \tlibmissing.so.3 => not found\n";
    assert_eq!(parse_ldd(output).unwrap_err(), "libmissing.so.3");
}

#[test]
fn the_dockerfile_copies_the_files_and_takes_env_values_literally() {
    let env = BTreeMap::from([
        ("GREETING".to_owned(), r#"say "hi" to $USER \o/"#.to_owned()),
        ("A_1".to_owned(), String::new()),
    ]);
    let entrypoint = [
        "/app/my-app".to_owned(),
        "--name".to_owned(),
        "a \"b\"".to_owned(),
    ];
    assert_eq!(
        context::dockerfile(&entrypoint, &env),
        "FROM scratch\n\
         COPY rootfs/ /\n\
         ENV A_1=\"\"\n\
         ENV GREETING=\"say \\\"hi\\\" to \\$USER \\\\o/\"\n\
         ENTRYPOINT [\"/app/my-app\",\"--name\",\"a \\\"b\\\"\"]\n"
    );
}

#[test]
fn env_names_and_values_the_dockerfile_cannot_hold_are_invalid_input() {
    for (key, value) in [("1ST", "x"), ("A-B", "x"), ("", "x"), ("OK", "two\nlines")] {
        let e = input::check_env(key, value).unwrap_err();
        assert_eq!(invalid_field(&e), "env", "{key}={value}");
    }
    input::check_env("_Ok_9", "any $thing \"quoted\"").unwrap();
}

#[test]
fn the_context_holds_the_binary_in_app_and_each_library_where_ldd_puts_it() {
    let binary = std::env::current_exe().unwrap();
    let name = input::check_binary(&binary).unwrap();
    let image = ScratchImage::new(&binary).arg("--flag").env("MODE", "test");
    let files = unpack(&image.context(&name).unwrap());

    let dockerfile = String::from_utf8(files[Path::new("Dockerfile")].1.clone()).unwrap();
    assert!(dockerfile.contains("ENV MODE=\"test\"\n"), "{dockerfile}");
    assert!(dockerfile.contains(&format!("ENTRYPOINT [\"/app/{name}\",\"--flag\"]")));

    let (mode, bytes) = &files[&Path::new("rootfs/app").join(&name)];
    assert_eq!(*mode, 0o755);
    assert_eq!(*bytes, std::fs::read(&binary).unwrap());

    let output = std::process::Command::new("ldd")
        .arg(&binary)
        .output()
        .unwrap();
    let libraries = parse_ldd(&String::from_utf8_lossy(&output.stdout)).unwrap();
    assert!(
        libraries.iter().any(|l| l.ends_with("libc.so.6")),
        "{libraries:?}"
    );
    #[cfg(all(target_arch = "x86_64", target_env = "gnu"))]
    assert!(libraries.contains(&PathBuf::from("/lib64/ld-linux-x86-64.so.2")));
    for library in &libraries {
        let in_context = Path::new("rootfs").join(library.strip_prefix("/").unwrap());
        let (_, bytes) = files
            .get(&in_context)
            .unwrap_or_else(|| panic!("{} is not in the context", in_context.display()));
        // The file itself, not a symbolic link to it.
        assert_eq!(
            *bytes,
            std::fs::read(library).unwrap(),
            "{}",
            library.display()
        );
    }
    assert_eq!(files.len(), 2 + libraries.len(), "{:?}", files.keys());
}

#[test]
fn the_same_image_gives_the_same_context_byte_for_byte() {
    let binary = std::env::current_exe().unwrap();
    let name = input::check_binary(&binary).unwrap();
    let image = ScratchImage::new(&binary)
        .env("B", "2")
        .env("A", "1")
        .label("k", "v");
    assert_eq!(image.context(&name).unwrap(), image.context(&name).unwrap());
}

#[tokio::test]
async fn a_missing_or_unfit_binary_is_invalid_input_before_any_call_to_docker() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("run.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let not_executable = dir.path().join("app");
    std::fs::copy(std::env::current_exe().unwrap(), &not_executable).unwrap();
    std::fs::set_permissions(&not_executable, std::fs::Permissions::from_mode(0o644)).unwrap();

    let cases = [
        (dir.path().join("missing"), "cannot be read"),
        (dir.path().to_path_buf(), "not a regular file"),
        (not_executable, "not executable"),
        (script, "not an ELF executable"),
    ];
    for (binary, why) in cases {
        // Through a client of nowhere: a call to Docker would fail as transient instead.
        let e = ScratchImage::new(&binary)
            .build(&nowhere())
            .await
            .unwrap_err();
        assert_eq!(invalid_field(&e), "binary", "{}", binary.display());
        assert!(e.to_string().contains(why), "{e}");
        assert!(e.to_string().contains(&binary.display().to_string()), "{e}");
    }

    let e = ScratchImage::new(std::env::current_exe().unwrap())
        .env("NOT-A-NAME", "x")
        .build(&nowhere())
        .await
        .unwrap_err();
    assert_eq!(invalid_field(&e), "env");
}

#[tokio::test]
async fn a_daemon_out_of_reach_is_transient_with_the_client_error_kept() {
    let e = ScratchImage::new(std::env::current_exe().unwrap())
        .build(&nowhere())
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn a_failed_build_keeps_the_daemon_message_and_the_client_error() {
    let image = ScratchImage::new("/usr/bin/app");
    let e = image.build_failed(bollard::errors::Error::DockerStreamError {
        error: "COPY failed: no source files were specified".into(),
    });
    assert!(matches!(e, Error::Provider { .. }), "{e}");
    assert!(
        e.to_string().contains("COPY failed: no source files"),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());
    assert!(!e.is_retryable());

    let lost = bollard::errors::Error::DockerStreamError {
        error: "unable to find image \"sha256:282c99\"".into(),
    };
    let e = image.build_failed(lost);
    assert!(matches!(e, Error::Transient { .. }), "{e}");
    assert!(e.to_string().contains("unable to find image"), "{e}");

    let refused = bollard::errors::Error::DockerResponseServerError {
        status_code: 500,
        message: "invalid reference format".into(),
    };
    let e = image.build_failed(refused);
    assert!(matches!(e, Error::Provider { .. }), "{e}");
    assert!(e.to_string().contains("invalid reference format"), "{e}");
}

#[test]
fn tags_are_checked_as_the_daemon_reads_them() {
    for good in [
        "my-app",
        "my-app:1.4.2",
        "team/my_app__x.y:v1_RC-2",
        "a--b:latest",
        "registry.example:5000/team/my-app:1",
        "localhost/app",
        "localhost:5000/app",
        "Registry.Example/app",
    ] {
        input::check_tag(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for bad in [
        "",
        "Not A Valid Tag",
        "MyApp",
        "app:",
        "app:.hidden",
        "app:-x",
        "app:has space",
        "-app",
        "app-",
        "a..b",
        "a___b",
        "a/",
        "/a",
        "app@sha256:0123",
        "bad_host:5000/app",
        "host:port/app",
    ] {
        let e = input::check_tag(bad).unwrap_err();
        assert_eq!(invalid_field(&e), "tag", "{bad}");
    }
    let long_tag = format!("app:{}", "t".repeat(129));
    assert_eq!(
        invalid_field(&input::check_tag(&long_tag).unwrap_err()),
        "tag"
    );
}

#[test]
fn image_ids_are_sha256_and_64_lowercase_hex_digits() {
    let hex = "0123456789abcdef".repeat(4);
    assert!(is_image_id(&format!("sha256:{hex}")));
    assert!(!is_image_id(&hex));
    assert!(!is_image_id(&format!("sha256:{}", hex.to_uppercase())));
    assert!(!is_image_id(&format!("sha256:{}", &hex[1..])));
}
