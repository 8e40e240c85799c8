//! Hostile inputs for the property tests of every parser of outside data (records, state
//! files, answers of a provider): documents the parser accepts, broken in the ways a
//! tampered or corrupted file is (a value replaced by a hostile string or number, a key
//! dropped, a type changed, the text cut short, bytes flipped or inserted), and a
//! [`Tally`] of what was tried and refused.
//!
//! ```
//! use immutable_core::conformance::hostile::{cases, hostile_json, runner, Tally};
//!
//! let tally = Tally::default();
//! let valid = serde_json::json!({ "service": "web", "weight": 10 });
//! runner()
//!     .run(&hostile_json(valid), |bytes| {
//!         let parsed = serde_json::from_slice::<serde_json::Value>(&bytes);
//!         tally.record(parsed.is_ok());
//!         Ok(())
//!     })
//!     .unwrap();
//! assert_eq!(tally.tried(), u64::from(cases()));
//! ```

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

/// Strings that have broken or could break a parser or what is built from its output:
/// path tricks, command separators, names outside the grammars, control and invisible
/// characters, the empty string, an overlong one.
pub const HOSTILE_STRINGS: &[&str] = &[
    "",
    ".",
    "..",
    "../../../etc/passwd",
    "/etc/passwd",
    "web/../api",
    "a b",
    "a;b",
    "a\nb",
    "web weight 0; shutdown sessions server web/a",
    "x\r\nset server web/a state maint",
    "\0",
    "\u{202e}web",
    "Web",
    "web:preview",
    "-rf",
    "$(reboot)",
    "`id`",
    "'",
    "\"",
    "%s%n",
    "é",
    "🦀",
    "0",
    "-1",
    "18446744073709551616",
    "NaN",
];

/// How many cases each property test runs: `PROPTEST_CASES` when set (10,000 for a long
/// run), else 1,000.
pub fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000)
}

/// A runner of [`cases`] cases that keeps no failure file (the tests run from read-only
/// checkouts too; a failure prints its input).
pub fn runner() -> proptest::test_runner::TestRunner {
    proptest::test_runner::TestRunner::new(proptest::test_runner::Config {
        cases: cases(),
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })
}

/// A string to put where a parser expects a name: one of [`HOSTILE_STRINGS`], a long one,
/// or any string.
pub fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(HOSTILE_STRINGS).prop_map(str::to_owned),
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
        3 => any::<String>(),
    ]
}

/// A number to put where a parser expects one.
fn hostile_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(-1)),
        Just(Value::from(0)),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        Just(Value::from(1e308)),
        Just(Value::from(0.5)),
        any::<i64>().prop_map(Value::from),
    ]
}

/// One way to break a document.
#[derive(Debug, Clone)]
enum Break {
    /// A leaf (string, number, bool or null) becomes a hostile string.
    String(Index, String),
    /// A leaf becomes a hostile number.
    Number(Index, Value),
    /// A value (leaf, object or array) becomes another type.
    Type(Index, u8),
    /// A key of an object goes.
    Drop(Index),
    /// The text ends early.
    Cut(Index),
    /// A byte of the text changes.
    Flip(Index, u8),
    /// Bytes are inserted into the text.
    Insert(Index, Vec<u8>),
    /// Any bytes at all.
    Bytes(Vec<u8>),
}

/// Bytes made from `valid` by one hostile change (see the module's header).
pub fn hostile_json(valid: Value) -> impl Strategy<Value = Vec<u8>> {
    let change = prop_oneof![
        4 => (any::<Index>(), hostile_string()).prop_map(|(i, s)| Break::String(i, s)),
        2 => (any::<Index>(), hostile_number()).prop_map(|(i, n)| Break::Number(i, n)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, t)| Break::Type(i, t)),
        2 => any::<Index>().prop_map(Break::Drop),
        1 => any::<Index>().prop_map(Break::Cut),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Break::Flip(i, b)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Break::Insert(i, b)),
        1 => proptest::collection::vec(any::<u8>(), 0..256).prop_map(Break::Bytes),
    ];
    change.prop_map(move |b| apply(&valid, b))
}

fn apply(valid: &Value, change: Break) -> Vec<u8> {
    let text = serde_json::to_vec_pretty(valid).unwrap_or_default();
    let mut doc = valid.clone();
    match change {
        Break::String(i, s) => replace(&mut doc, &i, false, |_| Value::String(s)),
        Break::Number(i, n) => replace(&mut doc, &i, false, |_| n),
        Break::Type(i, t) => replace(&mut doc, &i, true, |old| retype(old, t)),
        Break::Drop(i) => drop_key(&mut doc, &i),
        Break::Cut(i) => return text[..i.index(text.len() + 1)].to_vec(),
        Break::Flip(i, b) => {
            let mut text = text;
            if !text.is_empty() {
                let at = i.index(text.len());
                text[at] ^= b.max(1);
            }
            return text;
        }
        Break::Insert(i, bytes) => {
            let mut text = text;
            let at = i.index(text.len() + 1);
            text.splice(at..at, bytes);
            return text;
        }
        Break::Bytes(bytes) => return bytes,
    }
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

/// JSON pointers to the values of `doc` (the root excluded): every leaf, and with
/// `containers` every object and array too.
fn pointers(doc: &Value, containers: bool) -> Vec<String> {
    fn walk(v: &Value, at: String, containers: bool, out: &mut Vec<String>) {
        let children: Vec<(String, &Value)> = match v {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.replace('~', "~0").replace('/', "~1"), v))
                .collect(),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            _ => {
                out.push(at);
                return;
            }
        };
        if containers && !at.is_empty() {
            out.push(at.clone());
        }
        for (key, child) in children {
            walk(child, format!("{at}/{key}"), containers, out);
        }
    }
    let mut out = Vec::new();
    walk(doc, String::new(), containers, &mut out);
    out.retain(|p| !p.is_empty());
    out
}

fn replace(doc: &mut Value, i: &Index, containers: bool, to: impl FnOnce(&Value) -> Value) {
    let all = pointers(doc, containers);
    if all.is_empty() {
        return;
    }
    if let Some(target) = doc.pointer_mut(&all[i.index(all.len())]) {
        *target = to(target);
    }
}

fn retype(old: &Value, t: u8) -> Value {
    match (t % 5, old) {
        (0, _) => Value::Null,
        (1, _) => Value::Bool(true),
        (2, Value::String(s)) => Value::Array(vec![Value::String(s.clone())]),
        (2, _) => Value::String("x".into()),
        (3, _) => Value::Array(Vec::new()),
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// Removes one member of one object.
fn drop_key(doc: &mut Value, i: &Index) {
    let members: Vec<String> = pointers(doc, true)
        .into_iter()
        .filter(|p| {
            let parent = &p[..p.rfind('/').unwrap_or(0)];
            doc.pointer(parent).is_some_and(Value::is_object)
        })
        .collect();
    if members.is_empty() {
        return;
    }
    let member = &members[i.index(members.len())];
    let cut = member.rfind('/').unwrap_or(0);
    let key = member[cut + 1..].replace("~1", "/").replace("~0", "~");
    if let Some(Value::Object(map)) = doc.pointer_mut(&member[..cut]) {
        map.remove(&key);
    }
}

/// What a property test tried: how many inputs, how many the parser refused, how many it
/// accepted (a change that left the document valid, such as a label's value).
#[derive(Debug, Default)]
pub struct Tally {
    tried: AtomicU64,
    refused: AtomicU64,
}

impl Tally {
    /// Counts one input, accepted or refused.
    pub fn record(&self, accepted: bool) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        if !accepted {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Inputs tried.
    pub fn tried(&self) -> u64 {
        self.tried.load(Ordering::Relaxed)
    }

    /// Inputs refused.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// One line for the test's output: `<what>: N hostile inputs, R refused naming <where>,
    /// A accepted`.
    pub fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} hostile inputs, {} refused, {} accepted as valid",
            self.tried(),
            self.refused(),
            self.tried() - self.refused()
        )
    }
}
