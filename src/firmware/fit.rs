//! U-Boot FIT images (`mkimage -f image.its`), read as a map: a device tree ([`super::fdt`])
//! whose `/images/<name>` nodes carry the payloads.
//!
//! A tree is a FIT when its root has an `images` node. Parts are those of any device tree
//! (`header`, `memreserve`, one header part per property, `strings`), and for each image node
//! a payload part `images/<name>`: the value of its `data` property — or, for an image with
//! external data (`mkimage -E`), the `data-size` bytes at `data-offset` past the tree (its
//! `totalsize` rounded up to 4) or at the absolute `data-position`. The `data` property's
//! own token stays a header part (`images/<name>/data`: its `len` follows the payload). The
//! root's `timestamp` is a timestamp field, each `hash-N/value` (and `signature-N/value`) a
//! checksum, `data-size`/`data-offset`/`data-position` lengths.
//!
//! Invariants: those of the device-tree reader, and every external span is checked against
//! the source with checked arithmetic; parts never overlap (an image whose external data
//! overlaps the tree or another image is refused as corrupt).

use super::fdt::{self, Property};
use super::show::{be32, corrupt};
use super::{check_span, Error, Format, Map, Part, Role, Source};

const NAME: &str = "FIT";

/// Whether the tree in `source` is a FIT (its root has an `images` node).
pub(super) fn is_fit(source: &dyn Source) -> bool {
    fdt::read_tree(source).is_ok_and(|t| t.nodes.iter().any(|n| n == "images"))
}

/// `images/<name>` for a property of an image node, else `None`.
fn image_of(prop: &Property) -> Option<&str> {
    let rest = prop.node.strip_prefix("images/")?;
    (!rest.contains('/')).then_some(prop.node.as_str())
}

/// A one-cell (or two-cell) number property's value.
fn cell(source: &dyn Source, prop: &Property) -> Result<Option<u64>, Error> {
    let v = source.read_at(prop.value, 8)?;
    Ok(match prop.len {
        4 => Some(u64::from(be32(&v, 0))),
        8 => Some((u64::from(be32(&v, 0)) << 32) | u64::from(be32(&v, 4))),
        _ => None,
    })
}

pub(super) fn map(source: &dyn Source) -> Result<Map, Error> {
    let tree = fdt::read_tree(source)?;
    let mut parts = Vec::with_capacity(tree.props.len() + 3);
    fdt::block_parts(source, &tree.header, &mut parts)?;
    let external_base = tree.header.totalsize.next_multiple_of(4);
    for node in tree.nodes.iter().filter(|n| {
        n.strip_prefix("images/")
            .is_some_and(|rest| !rest.contains('/'))
    }) {
        let props: Vec<&Property> = tree.props.iter().filter(|p| &p.node == node).collect();
        let find = |name: &str| props.iter().find(|p| p.name == name).copied();
        if find("data").is_some() {
            continue;
        }
        let (Some(size), Some(at)) = (
            find("data-size"),
            find("data-position").or_else(|| find("data-offset")),
        ) else {
            continue;
        };
        let what = format!("the external data of `{node}`");
        let (Some(size), Some(mut offset)) = (cell(source, size)?, cell(source, at)?) else {
            return Err(corrupt(
                NAME,
                format!("{what} has no one-cell size or offset"),
            ));
        };
        if at.name == "data-offset" {
            offset = offset
                .checked_add(external_base)
                .ok_or_else(|| corrupt(NAME, format!("{what} lies past any image")))?;
        }
        check_span(NAME, &what, offset, size, source)?;
        parts.push(Part {
            name: node.clone(),
            offset,
            len: size,
            role: Role::Payload,
            fields: Vec::new(),
            packed: None,
        });
        // mkimage aligns each external image to 4 bytes.
        let end = offset + size;
        fdt::pad_part(
            node,
            end,
            end.next_multiple_of(4).min(source.len()),
            &mut parts,
        );
    }
    fdt::node_parts(&tree, &mut parts);
    for prop in &tree.props {
        let payload = (prop.name == "data")
            .then(|| image_of(prop))
            .flatten()
            .map(str::to_owned);
        fdt::property_parts(source, &tree.header, prop, payload, &mut parts)?;
    }
    fdt::order(NAME, &tree.header, &mut parts)?;
    Ok(Map {
        format: Format::Fit,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::mutate::{self, Bytes};
    use super::super::FieldKind;
    use super::*;

    const FIT: &[u8] = include_bytes!("../../testdata/firmware/fit.itb");
    const EXTERNAL: &[u8] = include_bytes!("../../testdata/firmware/fit-ext.itb");
    const KERNEL_GZ: &[u8] = include_bytes!("../../testdata/firmware/kernel.gz");
    const BOARD: &[u8] = include_bytes!("../../testdata/firmware/board.dtb");

    fn part<'m>(m: &'m Map, name: &str) -> &'m Part {
        m.parts.iter().find(|p| p.name == name).unwrap_or_else(|| {
            panic!(
                "no part `{name}` in {:?}",
                m.parts.iter().map(|p| &p.name).collect::<Vec<_>>()
            )
        })
    }

    fn bytes<'a>(image: &'a [u8], p: &Part) -> &'a [u8] {
        let start = usize::try_from(p.offset).unwrap();
        &image[start..start + usize::try_from(p.len).unwrap()]
    }

    fn check_images(image: &[u8]) {
        let m = map(&Bytes(image)).unwrap();
        assert_eq!(bytes(image, part(&m, "images/kernel")), KERNEL_GZ);
        assert_eq!(bytes(image, part(&m, "images/fdt-1")), BOARD);
        assert_eq!(part(&m, "images/kernel").role, Role::Payload);
        let ts = &part(&m, "timestamp").fields[2];
        assert_eq!(
            (ts.kind, ts.value.as_str()),
            (FieldKind::Timestamp, "1700000000 (2023-11-14 22:13:20 UTC)")
        );
        let hash = &part(&m, "images/kernel/hash-1/value").fields[2];
        assert_eq!(hash.kind, FieldKind::Checksum);
        assert!(hash.value.starts_with("<0xa9af2073 "), "{}", hash.value);
    }

    #[test]
    fn a_fit_names_its_images() {
        assert_eq!(
            super::super::identify(&Bytes(FIT)).unwrap(),
            Some(Format::Fit)
        );
        check_images(FIT);
        let m = map(&Bytes(FIT)).unwrap();
        // The data property's token is a header of its own (its length follows the payload),
        // just before the payload; the alignment after it is padding.
        let token = part(&m, "images/kernel/data");
        assert_eq!(token.offset + token.len, part(&m, "images/kernel").offset);
        assert_eq!(part(&m, "images/kernel:pad").role, Role::Padding);
    }

    #[test]
    fn external_data_is_found_past_the_tree() {
        assert_eq!(
            super::super::identify(&Bytes(EXTERNAL)).unwrap(),
            Some(Format::Fit)
        );
        check_images(EXTERNAL);
        let m = map(&Bytes(EXTERNAL)).unwrap();
        let f = &part(&m, "images/kernel/data-size").fields[2];
        assert_eq!((f.kind, f.value.as_str()), (FieldKind::Length, "54 (0x36)"));
    }

    proptest! {
        #[test]
        fn mutated_fits_never_break_the_reader(m in mutate::mutations(), ext in any::<bool>()) {
            let image = mutate::apply(if ext { EXTERNAL } else { FIT }, &m);
            mutate::check(Format::Fit, &Bytes(&image));
        }
    }
}
