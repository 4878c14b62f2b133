//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod attest;
mod attest_schema;
mod diff;
mod hash;
mod interrupt;
mod sandbox;
mod support;
mod verify;
