//! Test support for the readers of this crate's part A formats (uImage, FIT, device tree,
//! bzImage): real images mutated — bytes flipped, the image cut short, 32-bit words (either
//! byte order) set to huge values — for the property that a reader never panics, never hangs,
//! and maps only parts that lie within the source, in order, without overlap, with unique
//! names and fields within their parts.

use std::collections::HashSet;
use std::time::{Duration, Instant};

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

/// Identifies and maps `source` as `format`; panics only when the map breaks an invariant.
pub(super) fn check(format: Format, source: &dyn Source) {
    let start = Instant::now();
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
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "mapping took too long"
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
