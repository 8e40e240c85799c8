//! Property: a service file broken in any way (a value replaced by a hostile string, the text
//! cut, bytes changed or inserted, any bytes) is read without a panic: refused naming the file,
//! or accepted with a service that follows the grammar; the file is never changed.

use immutable_core::conformance::hostile::{Tally, hostile_string, runner};
use proptest::prelude::*;

use super::*;

const VALID: &str = "service = \"web\"\nbackend = \"local\"\nstore = \"file:/srv/j\"\n\
                     [local]\nroot = \"/srv/r\"\nhaproxy_socket = \"/run/h.sock\"\n\
                     [engine]\nlease_ttl = \"60s\"\n[deploy]\ncapacity = 3\n\
                     strategy = \"canary\"\nweights = [10, 50]\npause = \"5m\"\n";

/// The valid file with one change.
fn files() -> impl Strategy<Value = Vec<u8>> {
    let lines: Vec<&'static str> = VALID.lines().collect();
    let n = lines.len();
    prop_oneof![
        (0..n, hostile_string(), any::<bool>()).prop_map(move |(i, s, quoted)| {
            let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
            if let Some((key, _)) = out[i].split_once(" = ") {
                let value = if quoted { format!("{s:?}") } else { s };
                out[i] = format!("{key} = {value}");
            }
            out.join("\n").into_bytes()
        }),
        (0..VALID.len()).prop_map(|at| VALID.as_bytes()[..at].to_vec()),
        (0..VALID.len(), any::<u8>()).prop_map(|(at, b)| {
            let mut v = VALID.as_bytes().to_vec();
            v[at] ^= b.max(1);
            v
        }),
        (0..VALID.len(), proptest::collection::vec(any::<u8>(), 1..8)).prop_map(|(at, b)| {
            let mut v = VALID.as_bytes().to_vec();
            v.splice(at..at, b);
            v
        }),
        proptest::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
#[allow(clippy::print_stdout)] // the tally, for the test's output
fn hostile_service_files_are_refused_naming_the_file_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.toml");
    let shown = path.display().to_string();
    let tally = Tally::default();
    runner()
        .run(&files(), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            match read_service_file(&path) {
                Ok(file) => {
                    if let Some(s) = &file.service {
                        prop_assert!(immutable_core::ServiceName::check(s).is_ok(), "{s:?}");
                    }
                    tally.record(true);
                }
                Err(e) => {
                    prop_assert!(e.message.contains(&shown), "{}", e.message);
                    tally.record(false);
                }
            }
            prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            Ok(())
        })
        .unwrap();
    println!("{}", tally.summary("service files"));
    assert!(tally.refused() > 0);
}
