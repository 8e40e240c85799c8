//! The test kit's own tests: that its harnesses work before other crates rely on them.
#![allow(missing_docs, clippy::print_stderr)]

#[cfg(feature = "browser")]
mod browser;
#[cfg(feature = "docker")]
mod docker;
