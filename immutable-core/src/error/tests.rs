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

#[test]
fn a_backend_error_keeps_its_source_and_refusals_are_told_apart() {
    use std::error::Error as _;
    let io = std::io::Error::other("the provider said no (request id r-1)");
    for e in [
        Error::not_found(ResourceKind::Image, "img-1").with_source(io.to_string()),
        Error::already_exists(ResourceKind::Target, "tg-1").with_source(io.to_string()),
        Error::invalid("capacity", "must be at least 1").with_source(io.to_string()),
        Error::conflict("in use").with_source(io.to_string()),
    ] {
        let source = e.source().expect("the source is kept");
        assert!(
            source.to_string().contains("request id r-1"),
            "{e}: {source}"
        );
    }
    assert_eq!(
        Error::not_found(ResourceKind::Image, "img-1").category(),
        ErrorCategory::Backend
    );
    assert_eq!(
        Error::invalid("capacity", "x").category(),
        ErrorCategory::Input
    );
    let halted = Error::NothingToRollBack {
        service: ServiceName::new("web").unwrap(),
        reason: NoRollback::NoDeployment,
    };
    assert_eq!(halted.category(), ErrorCategory::Refused);
    assert_eq!(
        Error::store("disk full", None).category(),
        ErrorCategory::Store
    );
}
