//! The one integration test binary: the real `reprove` binary, run on real files.
#![allow(unreachable_pub)]

mod apt_mirror;
mod archive;
mod attest;
mod attest_identity;
mod attest_schema;
mod beneath;
mod build_dir;
mod causes;
mod ci_examples;
mod custody;
mod debian;
mod diff;
mod dump;
mod failures;
mod firmware;
mod firmware_a;
mod firmware_b;
mod hash;
mod imagemap;
mod interrupt;
mod json;
mod limits;
mod manual;
mod policy;
mod progress;
mod report;
mod sandbox;
mod scripts;
mod shift;
mod slurm;
mod snapshot;
mod support;
mod vary;
mod verify;
mod view;
