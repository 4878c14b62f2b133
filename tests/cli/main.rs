//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod archive;
mod attest;
mod attest_schema;
mod beneath;
mod diff;
mod hash;
mod interrupt;
mod limits;
mod sandbox;
mod shift;
mod support;
mod verify;
mod view;
