//! Property: record files broken as tampered files are, read by every reading operation.

use super::*;
use crate::ServiceName;
use crate::conformance::sample_record as record;

fn web() -> ServiceName {
    ServiceName::new("web").unwrap()
}

/// Property: a record file broken in any of the ways `conformance::hostile` knows (names and
/// ids outside their grammars, numbers out of range, keys dropped, types changed, text cut or
/// garbled) is read by every reading operation without a panic; each either accepts it (a
/// change that left it valid) or refuses it naming the file; the file is never changed.
/// `PROPTEST_CASES=10000` for a long run.
#[test]
#[allow(clippy::print_stdout)] // the tally, for the test's output
fn hostile_record_files_are_refused_naming_the_file_and_left_untouched() {
    use crate::conformance::hostile::{Tally, hostile_json, runner};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let mut valid = record("web");
    valid.green.fleet = Some(crate::FleetId::new("fleet-2"));
    valid.green.target = Some(crate::TargetId::new("target-2"));
    valid.blue = Some(crate::Blue {
        fleet: crate::FleetId::new("fleet-1"),
        target: crate::TargetId::new("target-1"),
        image: crate::ImageId::new("ami-0"),
    });
    rt.block_on(store.save(&mut valid)).unwrap();
    let path = dir
        .path()
        .join("deployments/web")
        .join(format!("{}.json", valid.id));
    let shown = path.display().to_string();
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let tally = Tally::default();
    runner()
        .run(&hostile_json(doc), |bytes| {
            std::fs::write(&path, &bytes).unwrap();
            let page = Page::first(10).unwrap();
            let errors = [
                rt.block_on(store.load(&valid.id)).err(),
                rt.block_on(store.latest(&web())).err(),
                rt.block_on(store.history(&web(), &page)).err(),
                rt.block_on(store.unfinished(None)).err(),
                rt.block_on(store.list(Some(&web()))).err(),
            ];
            let refused = errors.iter().flatten().count();
            for e in errors.iter().flatten() {
                proptest::prop_assert!(
                    matches!(e, Error::Store { .. }) && e.to_string().contains(&shown),
                    "an error that does not name the file: {e}"
                );
            }
            proptest::prop_assert_eq!(std::fs::read(&path).unwrap(), bytes);
            tally.record(refused == 0);
            Ok(())
        })
        .unwrap();
    println!(
        "{}",
        tally.summary("journal record files (FileStore), read 5 ways each")
    );
    assert!(tally.refused() > 0);
}
