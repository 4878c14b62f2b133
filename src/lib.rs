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

// Only `cli` (and what the integration tests read: `attest`, `hash`, `atomic`, `exit`) is
// public; everything else is the crate's own. The docs are built for its developers, with
// `--document-private-items`, so a link to a private item resolves.
#![allow(rustdoc::private_intra_doc_links)]

pub(crate) mod archive;
pub mod atomic;
pub mod attest;
pub(crate) mod beneath;
pub(crate) mod build;
pub mod cli;
pub(crate) mod compare;
pub(crate) mod config;
pub(crate) mod coverage;
pub(crate) mod dump;
pub(crate) mod escrow;
pub mod exit;
pub(crate) mod firmware;
pub mod hash;
pub(crate) mod interrupt;
pub(crate) mod output;
pub(crate) mod progress;
pub(crate) mod recipe;
pub(crate) mod report;
pub(crate) mod sandbox;
pub(crate) mod store;
pub(crate) mod toolchain;
pub(crate) mod verify;
