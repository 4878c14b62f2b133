//! Test support for the readers of this crate's part A formats (uImage, FIT, device tree,
//! bzImage): real images mutated — bytes flipped, the image cut short, 32-bit words (either
//! byte order) set to huge values — for the property that a reader never panics, never hangs,
//! and maps only parts that lie within the source, in order, without overlap, with unique
//! names and fields within their parts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::sample::Index;

use super::{identify, map, Format, Source, MAX_PARTS};

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    Flip(Index, u8),
    Huge(Index, u32, bool),
    Cut(Index),
}

pub(crate) fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (
            any::<Index>(),
            prop_oneof![
                Just(u32::MAX),
                Just(0x8000_0000),
                Just(0x7fff_fff0),
                any::<u32>()
            ],
            any::<bool>()
        )
            .prop_map(|(i, v, be)| Mutation::Huge(i, v, be)),
        any::<Index>().prop_map(Mutation::Cut),
    ];
    prop::collection::vec(one, 1..6)
}

/// `image` with `mutations` applied.
pub(crate) fn apply(image: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut out = image.to_vec();
    for m in mutations {
        if out.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, x) => {
                let at = i.index(out.len());
                out[at] ^= x;
            }
            Mutation::Huge(i, v, be) => {
                let at = i.index(out.len()) & !3;
                let bytes = if *be {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(slot) = out.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            Mutation::Cut(i) => out.truncate(i.index(out.len())),
        }
    }
    out
}

/// The most a reader may read to identify and map a source of `len` bytes, in bytes and in
/// reads. "Never hangs" is held by counting this work, not by a clock (the clock of a shared,
/// loaded machine proves nothing). Measured over these tests (December 2026): at most 4,734
/// bytes in 64 reads, 3.75 times the source for a 3-byte one; a reader that loops re-reading
/// the source passes the bound within a few rounds.
fn work_bound(len: u64) -> (u64, u64) {
    (len.saturating_mul(4).saturating_add(1 << 20), 4096)
}

/// A source that counts what is read of it.
struct Counting<'a> {
    inner: &'a dyn Source,
    bytes: AtomicU64,
    reads: AtomicU64,
}

impl Source for Counting<'_> {
    fn len(&self) -> u64 {
        self.inner.len()
    }

    fn read_at(&self, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let out = self.inner.read_at(pos, len)?;
        self.bytes.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(out)
    }
}

/// Identifies and maps `source` as `format`; panics only when the map breaks an invariant or
/// reads more than [`work_bound`] allows.
pub(super) fn check(format: Format, source: &dyn Source) {
    let source = &Counting {
        inner: source,
        bytes: AtomicU64::new(0),
        reads: AtomicU64::new(0),
    };
    let _ = identify(source);
    if let Ok(m) = map(format, source) {
        assert!(m.parts.len() <= MAX_PARTS);
        let mut names = HashSet::new();
        let mut end = 0u64;
        for p in &m.parts {
            let stop = p.offset.checked_add(p.len).expect("a part's end fits");
            assert!(
                stop <= source.len(),
                "part `{}` runs past the source",
                p.name
            );
            assert!(p.offset >= end, "part `{}` overlaps the one before", p.name);
            assert!(names.insert(p.name.clone()), "part `{}` twice", p.name);
            for f in &p.fields {
                assert!(
                    f.offset + f.len <= p.len,
                    "field `{}` outside `{}`",
                    f.name,
                    p.name
                );
            }
            end = stop;
        }
    }
    let (bytes, reads) = (
        source.bytes.load(Ordering::Relaxed),
        source.reads.load(Ordering::Relaxed),
    );
    let (max_bytes, max_reads) = work_bound(source.len());
    assert!(
        bytes <= max_bytes && reads <= max_reads,
        "identifying and mapping {} bytes read {bytes} bytes in {reads} reads (at most \
         {max_bytes} in {max_reads})",
        source.len()
    );
}

/// A real image's first bytes followed by zeros up to `len`: the setup of a real kernel, as
/// long as the kernel was, without keeping the kernel.
pub(super) struct Padded {
    pub(super) head: Vec<u8>,
    pub(super) len: u64,
}

impl Source for Padded {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
        let end = pos.saturating_add(len as u64).min(self.len);
        let mut out = Vec::new();
        let mut at = pos;
        while at < end {
            let b = usize::try_from(at)
                .ok()
                .and_then(|i| self.head.get(i))
                .copied()
                .unwrap_or(0);
            out.push(b);
            at += 1;
            if at - pos > (1 << 20) {
                break;
            }
        }
        Ok(out)
    }
}

/// A byte slice as a sized [`Source`] (a `&[u8]` cannot become a `&dyn Source` itself).
pub(super) struct Bytes<'a>(pub(super) &'a [u8]);

impl Source for Bytes<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, pos: u64, len: usize) -> std::io::Result<Vec<u8>> {
        Source::read_at(self.0, pos, len)
    }
}
