//! Certificates for a private daemon that listens on TCP with TLS: a CA of the test's own, a
//! server certificate for 127.0.0.1 and a client certificate, made with `openssl` (Debian's
//! package) under the daemon's directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files a TLS daemon and its client use, under `<root>/tls`.
#[derive(Debug, Clone)]
pub struct TlsCerts {
    dir: PathBuf,
}

impl TlsCerts {
    /// Makes a CA, a server certificate (for IP 127.0.0.1) and a client certificate, valid
    /// for two days.
    ///
    /// # Panics
    /// When `openssl` fails, with what it said.
    pub(super) fn make(root: &Path) -> TlsCerts {
        let dir = root.join("tls");
        std::fs::create_dir_all(&dir).expect("a directory for the certificates");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .unwrap_or_else(|e| panic!("openssl (Debian's package) must run: {e}"));
            assert!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=immutable-test-ca",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (key, csr, cert, ext, cn) in [
            (
                "server-key.pem",
                "server.csr",
                "server-cert.pem",
                "server.ext",
                "/CN=127.0.0.1",
            ),
            (
                "key.pem",
                "client.csr",
                "cert.pem",
                "client.ext",
                "/CN=immutable-test-client",
            ),
        ] {
            run(&[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", cn,
            ]);
            run(&[
                "x509",
                "-req",
                "-in",
                csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                cert,
                "-days",
                "2",
                "-extfile",
                ext,
            ]);
        }
        TlsCerts { dir }
    }

    /// Where `ca.pem`, `cert.pem` and `key.pem` of the client are (as `DOCKER_CERT_PATH`).
    pub fn client_dir(&self) -> &Path {
        &self.dir
    }

    /// The daemon's flags: verify clients against the CA, serve the server certificate.
    pub(super) fn daemon_args(&self) -> Vec<String> {
        let file = |f: &str| self.dir.join(f).display().to_string();
        vec![
            "--tlsverify".into(),
            format!("--tlscacert={}", file("ca.pem")),
            format!("--tlscert={}", file("server-cert.pem")),
            format!("--tlskey={}", file("server-key.pem")),
        ]
    }
}
