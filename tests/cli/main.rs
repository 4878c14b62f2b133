//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod apt_mirror;
mod archive;
mod attest;
mod attest_schema;
mod beneath;
mod build_dir;
mod diff;
mod hash;
mod interrupt;
mod limits;
mod manual;
mod progress;
mod sandbox;
mod scripts;
mod support;
mod verify;
mod view;
