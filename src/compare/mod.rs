//! Setting rebuilt bytes against shipped ones: where they differ, and why.
//!
//! [`bytes`] is the streaming core: two inputs read side by side in chunks, equal chunks
//! skipped at memory speed, differing bytes counted exactly and gathered into merged ranges.
//! Memory stays bounded whatever the input size.

pub mod bytes;

pub use bytes::{compare_files, compare_readers, ByteDiff, ByteRange};
