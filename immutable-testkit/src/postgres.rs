//! A private PostgreSQL cluster (Debian's `postgresql` package) in a temporary directory, on a
//! free loopback port: [`Postgres`].
//!
//! `initdb` refuses to run as root, and CI runs as root: as root, the cluster's commands run
//! as the `postgres` user the package creates (`runuser -u postgres --`), in a directory
//! handed to it. The server listens on 127.0.0.1 only, and on a Unix socket inside the
//! directory; TCP connections need the password of the superuser `immutable`
//! ([`Postgres::password`]). A watchdog process (a shell whose standard input the test process
//! holds) stops the server and deletes the directory when the test process ends, however it
//! ends, or when the [`Postgres`] is dropped.
//!
//! The server runs without fsync (tests are not about surviving the machine's crash) and
//! with `pg_stat_statements` loaded, for tests that count what was sent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where Debian's packages put the server's programs: `<here>/<major version>/bin`.
pub const DEBIAN_LIB: &str = "/usr/lib/postgresql";

/// The database every cluster has for the tests; each test takes a schema of its own
/// ([`Postgres::schema`]).
pub const DATABASE: &str = "immutable";

/// The superuser.
pub const USER: &str = "immutable";

/// A running cluster of the test's own: stopped and deleted when dropped.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    password: String,
    as_postgres: bool,
    watchdog: Child,
    lifeline: Option<ChildStdin>,
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the watchdog's input makes it stop the server and delete the directory.
        drop(self.lifeline.take());
        let _ = self.watchdog.wait();
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `IMMUTABLE_PG_BIN`, or the newest
/// version under [`DEBIAN_LIB`], or the directory of an `initdb` on the `PATH`.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("IMMUTABLE_PG_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir(DEBIAN_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse::<u32>().ok()?, e.path())))
        .max()
        .map(|(_, p)| p.join("bin"));
    if let Some(dir) = newest.filter(|d| d.join("initdb").exists()) {
        return dir;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL's initdb not found under {DEBIAN_LIB}/<version>/bin or on the PATH: \
                 install Debian's postgresql (scripts/test.sh does), or name the directory with \
                 IMMUTABLE_PG_BIN"
            )
        })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn id_of(flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .expect("`id` runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| {
            panic!("no `postgres` user to run initdb as (as root it refuses to run): install Debian's postgresql, which creates it")
        })
}

impl Postgres {
    /// The cluster of this test binary, started on first use; tests share it through
    /// schemas ([`schema`](Self::schema)).
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Postgres> = OnceLock::new();
        SHARED.get_or_init(Postgres::start)
    }

    /// Starts a cluster of its own and waits until it answers. Panics (never skips) when it
    /// cannot, with the end of the server's log.
    pub fn start() -> Postgres {
        let bin = bin_dir();
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("impg.")
            .tempdir_in("/tmp")
            .expect("a directory in /tmp for a PostgreSQL cluster")
            .keep();
        if as_postgres {
            std::os::unix::fs::chown(&dir, Some(id_of("-u")), Some(id_of("-g")))
                .expect("the cluster's directory handed to the postgres user");
        }
        let password = format!("pw-{}-{}", std::process::id(), fastrand::u64(..));
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, format!("{password}\n")).unwrap();
        if as_postgres {
            std::os::unix::fs::chown(&pwfile, Some(id_of("-u")), None).unwrap();
        }
        // The watchdog first: whatever happens next, the directory goes with the process.
        let (watchdog, lifeline) = watchdog(&bin, &dir, as_postgres);
        let pg = Postgres {
            bin,
            dir,
            port: free_port(),
            password,
            as_postgres,
            watchdog,
            lifeline: Some(lifeline),
        };
        let data = pg.data();
        let (data_arg, pwfile_arg) = (data.display().to_string(), pwfile.display().to_string());
        pg.run(
            "initdb",
            &[
                "-D",
                &data_arg,
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile_arg,
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        let conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 200\nshared_preload_libraries = 'pg_stat_statements'\n\
             pg_stat_statements.track = all\n",
            pg.port,
            pg.dir.display()
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        file.write_all(conf.as_bytes()).unwrap();
        pg.ctl(&["start"]);
        pg.psql(&format!("CREATE DATABASE {DATABASE}"), "postgres");
        pg.psql("CREATE EXTENSION pg_stat_statements", DATABASE);
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the server's programs (as `postgres` under root), panicking with its
    /// output and the server's log when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()));
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{program} {args:?} failed ({}):\n{}{}\nserver log ends:\n{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// `pg_ctl <action>` on this cluster, waiting for it to finish.
    fn ctl(&self, action: &[&str]) {
        let data = self.data().display().to_string();
        let log = self.dir.join("server.log").display().to_string();
        let mut args = vec!["-D", &data, "-l", &log, "-w"];
        args.extend(action);
        self.run("pg_ctl", &args);
    }

    /// `sql` through `psql` on the Unix socket, as the superuser.
    pub fn psql(&self, sql: &str, database: &str) {
        let dir = self.dir.display().to_string();
        let port = self.port.to_string();
        let args = [
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &dir,
            "-p",
            &port,
            "-U",
            USER,
            "-d",
            database,
            "-c",
            sql,
        ];
        self.run("psql", &args);
    }

    /// Stops the server at once (`pg_ctl restart -m fast`: sessions are cut, transactions
    /// under way roll back) and starts it again, waiting until it answers.
    pub fn restart(&self) {
        self.ctl(&["-m", "fast", "restart"]);
    }

    /// Stops the server (`-m fast`) and leaves it stopped.
    pub fn stop(&self) {
        self.ctl(&["-m", "fast", "stop"]);
    }

    /// Starts a stopped server again.
    pub fn start_again(&self) {
        self.ctl(&["start"]);
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `postgres://immutable@127.0.0.1:<port>/immutable`, without the password.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The URL with the password in it.
    pub fn url_with_password(&self) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// A schema name no other test of this process uses: `<prefix>_<n>_<pid>`.
    pub fn schema(&self, prefix: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        format!(
            "{prefix}_{}_{}",
            NEXT.fetch_add(1, Ordering::SeqCst),
            std::process::id()
        )
    }

    /// A connection as the superuser, its driver task spawned on the current runtime.
    pub async fn admin(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(
            &format!("{} password={}", self.keywords(), self.password),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test cluster: {e}"));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    fn keywords(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname={DATABASE} application_name=test-admin",
            self.port
        )
    }

    /// The cluster's directory (data, log, socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// A shell that waits for its input to close, then stops the server at once and deletes
/// `dir`: in a process group of its own and deaf to the terminal's signals, so a Ctrl-C of the
/// tests does not stop it before it has cleaned up.
fn watchdog(bin: &Path, dir: &Path, as_postgres: bool) -> (Child, ChildStdin) {
    let run_as = if as_postgres {
        "runuser -u postgres -- "
    } else {
        ""
    };
    let script = format!(
        "trap '' INT HUP TERM; cat >/dev/null; \
         if [ -f \"$1/data/postmaster.pid\" ]; then \
           {run_as}\"$2/pg_ctl\" -D \"$1/data\" -m immediate -w stop >/dev/null 2>&1; \
         fi; rm -rf \"$1\""
    );
    use std::os::unix::process::CommandExt;
    let mut child = Command::new("sh")
        .args(["-c", &script, "watchdog"])
        .process_group(0)
        .arg(dir)
        .arg(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("a watchdog shell for the PostgreSQL cluster");
    let lifeline = child.stdin.take().expect("its input");
    (child, lifeline)
}

/// A loopback port free at the time of the call.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
