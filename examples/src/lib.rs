//! Runnable examples of the immutable SDK; see the `[[example]]` entries.
