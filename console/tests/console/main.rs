//! Tests of the console: figures and alerts, the pure `update`, rendering snapshots,
//! `status` output, and the wire (loopback HTTP, the local Redis). One test binary, so
//! the workspace links once.

// Test helpers fail the test by panicking, as `#[test]` bodies do.
#![allow(clippy::unwrap_used)]

mod figures;
mod fixtures;
mod render;
mod status;
mod update;
mod wire;
