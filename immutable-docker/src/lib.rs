//! # immutable-docker
//!
//! The Docker backend of **immutable** (work in progress).

mod scratch;
pub use scratch::ScratchImage;
