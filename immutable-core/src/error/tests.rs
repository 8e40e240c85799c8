use super::*;

#[test]
fn only_throttling_and_transient_are_retryable() {
    assert!(Error::throttled("slow down").is_retryable());
    assert!(Error::transient("503").is_retryable());
    assert!(!Error::provider("denied").is_retryable());
    assert!(!Error::invalid("capacity", "must be > 0").is_retryable());
    assert!(!Error::not_found(ResourceKind::Fleet, "f-1").is_retryable());
    assert!(!Error::conflict("x").is_retryable());
}

#[test]
fn invalid_input_names_the_field() {
    let e = Error::invalid("capacity", "must be at least 1");
    assert_eq!(
        e.to_string(),
        "invalid input: `capacity` must be at least 1"
    );
}
