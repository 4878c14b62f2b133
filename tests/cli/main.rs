//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod apt_mirror;
mod archive;
mod attest;
mod attest_schema;
mod batch;
mod beneath;
mod build_dir;
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
mod manual;
mod progress;
mod sandbox;
mod scripts;
mod shift;
mod support;
mod vary;
mod verify;
mod view;
