//! What may survive a private dockerd, found and removed: the processes naming its directory
//! (its containerd, which runs in a process group of its own, and the shims of its
//! containers, which dockerd's signal never reaches) with their children (what the containers
//! run), and mounts left under the directory (a network namespace, an overlay).

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::mount::UnmountFlags;
use rustix::process::{Pid, Signal};

/// How long killed processes may take to be gone.
const GONE: Duration = Duration::from_secs(5);

/// Kills what the daemon's containers run (the children of its shims), and waits (at most
/// 5 s) until they are gone: dockerd stops running containers one by one, waiting 10 s for
/// each that ignores SIGTERM, as a container's first process does unless it handles it.
pub(super) fn kill_containers(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let processes = processes();
    let shims: Vec<i32> = processes
        .iter()
        .filter(|p| p.cmdline.contains("containerd-shim") && p.cmdline.contains(&needle))
        .map(|p| p.pid)
        .collect();
    kill_and_wait(
        processes
            .iter()
            .filter(|p| shims.contains(&p.ppid))
            .map(|p| p.pid),
    );
}

/// Kills every process whose command line names `dir`, and every child of one, and waits (at
/// most 5 s) until they are gone.
pub(super) fn kill_processes_naming(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let processes = processes();
    let naming: Vec<i32> = processes
        .iter()
        .filter(|p| p.cmdline.contains(&needle))
        .map(|p| p.pid)
        .collect();
    kill_and_wait(
        processes
            .iter()
            .filter(|p| naming.contains(&p.pid) || naming.contains(&p.ppid))
            .map(|p| p.pid),
    );
}

fn kill_and_wait(pids: impl Iterator<Item = i32>) {
    let doomed: Vec<i32> = pids.collect();
    for pid in &doomed {
        if let Some(pid) = Pid::from_raw(*pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
    }
    let deadline = Instant::now() + GONE;
    while doomed.iter().any(|pid| alive(*pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Unmounts (lazily) whatever is mounted at or under `dir`, deepest first.
pub(super) fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    points.dedup();
    for point in points {
        let _ = rustix::mount::unmount(point.as_str(), UnmountFlags::DETACH);
    }
}

/// A mount point as mountinfo writes it, with its octal escapes (`\040` for a space) undone.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match octal.and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One process: its id, its parent's, its command line (arguments joined by spaces).
struct Process {
    pid: i32,
    ppid: i32,
    cmdline: String,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            Some(Process { pid, ppid, cmdline })
        })
        .collect()
}

/// Whether `pid` runs (a zombie waiting to be reaped does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !matches!(
            s.rsplit(')').next().and_then(|r| r.trim().chars().next()),
            Some('Z' | 'X')
        )
    })
}

#[cfg(test)]
mod tests {
    use super::unescape;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape(r"/tmp/a\040b/c\\d"), r"/tmp/a b/c\\d");
        assert_eq!(unescape("/plain/path"), "/plain/path");
    }
}
