//! The integration tests of immutable-docker in one binary: one link and one process, so what
//! one test starts the others can share. They run against the machine's Docker daemon
//! (`scripts/test.sh` installs Debian's docker.io and starts it) and fail, never skip,
//! without it.
#![allow(missing_docs)]

mod common;

mod scratch;
