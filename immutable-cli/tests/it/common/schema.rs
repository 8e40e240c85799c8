//! The committed JSON Schema of `--output json` (`docs/output.schema.json`), against which
//! every JSON line the tests read is checked.

use std::sync::OnceLock;

/// Panics, naming the errors, when `doc` is not one of the schema's documents.
pub fn check(doc: &serde_json::Value) {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.schema.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let schema = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{path}: {e}"))
    });
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "not as the schema says: {errors:?}\n{doc}"
    );
}
