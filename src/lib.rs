//! `reprove` proves that shipped firmware was built from escrowed source.
//!
//! The data path of `verify` reads as one line: a [`recipe`] and its [`toolchain`] lock are
//! loaded and every pin is checked; the [`escrow`] is checked against its digest and unpacked
//! safely; [`build`] runs the recipe's command in a fresh tree through a [`sandbox`] backend;
//! the artifacts and the shipped set are [`hash`]ed (sha256 and blake3 from one read);
//! [`compare`] sets the rebuilt bytes against the shipped ones and explains each difference;
//! [`attest`] records the whole as an in-toto statement. [`verify`] strings these together.
//! [`cli`] is the only code that knows clap and [`output`] the only code that prints.
//! [`interrupt`] owns the signals: a SIGINT or SIGTERM at any stage unwinds the run, so every
//! temporary file and folder is removed on the way out. [`progress`] is what long work tells
//! whoever shows its progress (stages, and counters of bytes hashed and entries unpacked).

pub mod archive;
pub mod atomic;
pub mod attest;
pub mod beneath;
pub mod build;
pub mod cli;
pub mod compare;
pub(crate) mod config;
pub mod coverage;
pub(crate) mod dump;
pub mod escrow;
pub mod exit;
pub mod firmware;
pub mod hash;
pub mod interrupt;
pub mod output;
pub mod progress;
pub mod recipe;
pub(crate) mod report;
pub mod sandbox;
pub mod store;
pub mod toolchain;
pub mod verify;
