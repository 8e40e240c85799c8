//! The timeline's bound and its JSON.
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

#[test]
fn a_full_timeline_drops_superseded_health_first_and_keeps_phases() {
    let mut t = Timeline::default();
    t.push(
        at(0),
        Mark::Phase {
            phase: Phase::Plan,
            note: None,
        },
    );
    for i in 0..Timeline::MAX_ENTRIES as u64 * 2 {
        t.push_health(at(i + 1), Side::Green, i as usize, Some(1_000));
    }
    t.push(at(10_000), Mark::Weight { percent: 10 });
    assert_eq!(t.entries().len(), Timeline::MAX_ENTRIES);
    assert_eq!(t.dropped(), Timeline::MAX_ENTRIES as u64 + 2);
    assert!(matches!(t.entries()[0].mark, Mark::Phase { .. }));
    // The newest sample survives: it is what the fleet has now.
    assert_eq!(
        t.last_health(Side::Green),
        Some((Timeline::MAX_ENTRIES * 2 - 1, Some(1_000)))
    );
    assert_eq!(
        t.entries().last().unwrap().mark,
        Mark::Weight { percent: 10 }
    );
}

#[test]
fn without_health_samples_the_oldest_non_phase_entry_goes() {
    let mut t = Timeline::default();
    t.push(
        at(0),
        Mark::Phase {
            phase: Phase::Plan,
            note: None,
        },
    );
    for i in 0..Timeline::MAX_ENTRIES as u32 {
        t.push(at(u64::from(i) + 1), Mark::Weight { percent: i % 100 });
    }
    assert_eq!(t.entries().len(), Timeline::MAX_ENTRIES);
    assert!(matches!(t.entries()[0].mark, Mark::Phase { .. }));
    assert_eq!(t.entries()[1].mark, Mark::Weight { percent: 1 });
    assert_eq!(t.dropped(), 1);
}

#[test]
fn a_repeated_health_sample_is_not_recorded() {
    let mut t = Timeline::default();
    t.push_health(at(1), Side::Blue, 3, None);
    t.push_health(at(2), Side::Blue, 3, None);
    t.push_health(at(3), Side::Green, 3, None);
    t.push_health(at(4), Side::Blue, 2, None);
    assert_eq!(t.entries().len(), 3);
}

#[test]
fn entries_read_back_from_json_as_written() {
    let mut t = Timeline::default();
    t.push(
        at(5),
        Mark::Command {
            id: "01j".into(),
            command: Command::Abort {
                reason: "p99 up".into(),
            },
            by: "alice".into(),
        },
    );
    t.push(
        at(6),
        Mark::Check {
            name: "http".into(),
            passed: false,
            reason: Some("503".into()),
        },
    );
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains(r#""mark":"command""#), "{json}");
    assert_eq!(serde_json::from_str::<Timeline>(&json).unwrap(), t);
    assert_eq!(t.entries()[0].mark.to_string(), "abort (p99 up), by alice");
}
