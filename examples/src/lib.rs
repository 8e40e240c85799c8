//! Runnable examples of the immutable SDK; see the `[[example]]` entries.

use std::error::Error;
use std::fmt;

/// What an example's `main` returns: when it fails, the error is printed as people read it
/// (its message, then each cause on a line), never as Rust's `Debug` of the error value.
pub struct Failure(Box<dyn Error>);

impl<E: Into<Box<dyn Error>>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.into())
    }
}

impl fmt::Debug for Failure {
    /// `main` prints `Error: ` and this.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, "\n  caused by: {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}
