//! # immutable-docker
//!
//! The Docker backend of **immutable** (work in progress).
