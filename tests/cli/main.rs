//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod archive;
mod attest;
mod attest_schema;
mod beneath;
mod causes;
mod debian;
mod diff;
mod failures;
mod firmware;
mod firmware_a;
mod firmware_b;
mod hash;
mod imagemap;
mod interrupt;
mod limits;
mod sandbox;
mod support;
mod vary;
mod verify;
mod view;
