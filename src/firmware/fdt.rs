//! Flattened device trees (`dtc -O dtb`, the Devicetree Specification's chapter 5), read as a
//! map of properties; the FIT reader ([`super::fit`]) uses the same walk.
//!
//! The blob is a 40-byte big-endian header, a memory-reservation block, a structure block of
//! tokens (`FDT_BEGIN_NODE` name, `FDT_PROP` len nameoff value, `FDT_END_NODE`, `FDT_NOP`,
//! `FDT_END`) and a strings block holding property names. It is parsed here rather than with a
//! crate: the Rust FDT readers (`fdt`, `flat_device_tree`, `fdt-rs`) want the whole blob as one
//! slice in memory — a FIT image carries its kernel inside the tree, so that is the whole image
//! — and give a property's value as a slice without its place in the blob, which a map must
//! name. The format is small: tokens walked in a loop with an explicit path stack, no
//! recursion.
//!
//! Parts: `header` (the header's ten fields: sizes and offsets are lengths), `memreserve`,
//! then one part per property, named by its node's path and its name without the leading `/`
//! (`chosen/bootargs`; a property of the root node is its bare name, `model`), spanning the
//! whole token. A property part is a header of up to three fields: `len` and `nameoff` (lengths:
//! they move when the value or the strings do) and `value`, written as text, cells or bytes —
//! a timestamp when it is the root's `timestamp`, a checksum when it is the `value` of a
//! `hash*` or `signature*` node, a length for `data-size`, `data-offset`, `data-position`.
//! A value longer than [`MAX_FIELD_VALUE`] is a payload part of its own, named `<path>:value`
//! (compared as content, recursively: a blob inside a tree may be gzip or ELF). Then
//! `strings`. Node tokens and alignment padding are left to the comparison's gaps.
//!
//! Invariants: every offset and length in the header and the structure block is checked
//! against the source with checked arithmetic; nesting is bounded by [`MAX_DEPTH`], names by
//! [`MAX_NAME`], the strings block (read whole) by [`MAX_STRINGS`], the count of properties by
//! [`MAX_PARTS`]; the structure block is read in chunks of [`CHUNK`] bytes, values are read only
//! up to [`MAX_FIELD_VALUE`]. A name repeated within a node (a crafted tree) gets a `#N` suffix,
//! so part names stay unique.

use std::collections::{HashMap, HashSet};

use super::show::{be32, corrupt, epoch, hex, number, text};
use super::{check_span, Error, Field, FieldKind, Format, Map, Part, Role, Source, MAX_PARTS};

pub(super) const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: u64 = 40;
/// The header's length, for reads.
const HEADER_BYTES: usize = 40;
/// The deepest nesting of nodes read.
pub(super) const MAX_DEPTH: usize = 64;
/// The longest node or property name read.
pub(super) const MAX_NAME: usize = 4096;
/// The largest strings block read (it is read whole: property names point into it).
pub(super) const MAX_STRINGS: u64 = 1 << 20;
/// A property value up to this many bytes is a header field; a longer one is a part.
pub(super) const MAX_FIELD_VALUE: u64 = 4096;
/// The `fixed-partitions` nodes read in one tree, at most.
const MAX_PARTITION_NODES: usize = 16;
/// The structure block is read this many bytes at a time.
const CHUNK: usize = 64 * 1024;

const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;

/// The header of a blob, as its fields.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header {
    pub(super) totalsize: u64,
    pub(super) off_struct: u64,
    pub(super) off_strings: u64,
    pub(super) off_rsvmap: u64,
    pub(super) size_strings: u64,
    pub(super) size_struct: u64,
}

/// One property of the tree, where its token and value are.
#[derive(Debug, Clone)]
pub(super) struct Property {
    /// The node's path without the leading `/` (`""` for the root).
    pub(super) node: String,
    pub(super) name: String,
    /// Where the `FDT_PROP` token starts.
    pub(super) token: u64,
    /// Where the value starts, and its length.
    pub(super) value: u64,
    pub(super) len: u64,
}

impl Property {
    /// `node/name`, or `name` for a property of the root.
    pub(super) fn path(&self) -> String {
        if self.node.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.node, self.name)
        }
    }

    /// The last component of the node's path (`hash-1` for `images/kernel/hash-1`).
    pub(super) fn node_name(&self) -> &str {
        self.node.rsplit('/').next().unwrap_or("")
    }
}

/// A blob's header and properties, in the order of the structure block.
#[derive(Debug)]
pub(super) struct Tree {
    pub(super) header: Header,
    pub(super) props: Vec<Property>,
    /// Node paths (without the leading `/`), in order.
    pub(super) nodes: Vec<String>,
    /// Where each node's `FDT_BEGIN_NODE` token is, in the order of `nodes`.
    pub(super) node_tokens: Vec<u64>,
}

pub(super) fn is_fdt(source: &dyn Source) -> std::io::Result<bool> {
    let head = source.read_at(0, 4)?;
    Ok(source.len() >= HEADER_LEN && be32(&head, 0) == MAGIC)
}

/// Reads bytes of the source through one buffered chunk.
struct Window<'s> {
    source: &'s dyn Source,
    start: u64,
    buf: Vec<u8>,
}

impl Window<'_> {
    /// `len` bytes at `pos` (fewer at the end of the source); `len` at most [`CHUNK`].
    fn get(&mut self, pos: u64, len: usize) -> std::io::Result<&[u8]> {
        let inside = pos >= self.start
            && (pos - self.start)
                .checked_add(len as u64)
                .is_some_and(|end| end <= self.buf.len() as u64);
        if !inside {
            self.start = pos;
            self.buf = self.source.read_at(pos, CHUNK.max(len))?;
        }
        let at = usize::try_from(pos - self.start).unwrap_or(usize::MAX);
        let end = at.saturating_add(len).min(self.buf.len());
        Ok(self.buf.get(at..end).unwrap_or(&[]))
    }

    fn u32(&mut self, pos: u64) -> Result<u32, Error> {
        let b = self.get(pos, 4)?;
        if b.len() < 4 {
            return Err(corrupt(
                NAME,
                format!("the structure block ends inside a token at {pos:#x}"),
            ));
        }
        Ok(be32(b, 0))
    }
}

const NAME: &str = "device tree";

pub(super) fn read_header(source: &dyn Source) -> Result<Header, Error> {
    let h = source.read_at(0, HEADER_BYTES)?;
    if h.len() < 40 || be32(&h, 0) != MAGIC {
        return Err(corrupt(NAME, "no device-tree header (magic 0xd00dfeed)"));
    }
    let version = be32(&h, 20);
    if version < 16 {
        return Err(corrupt(NAME, format!("version {version} is older than 16")));
    }
    let header = Header {
        totalsize: u64::from(be32(&h, 4)),
        off_struct: u64::from(be32(&h, 8)),
        off_strings: u64::from(be32(&h, 12)),
        off_rsvmap: u64::from(be32(&h, 16)),
        size_strings: u64::from(be32(&h, 32)),
        // Version 16 has no struct size: the block runs to the end of the blob at most.
        size_struct: if version >= 17 {
            u64::from(be32(&h, 36))
        } else {
            u64::from(be32(&h, 4)).saturating_sub(u64::from(be32(&h, 8)))
        },
    };
    check_span(NAME, "the blob (`totalsize`)", 0, header.totalsize, source)?;
    let inside = |what: &str, off: u64, len: u64| match off.checked_add(len) {
        Some(end) if end <= header.totalsize => Ok(()),
        _ => Err(corrupt(
            NAME,
            format!(
                "{what} at {off:#x}+{len} runs past `totalsize` ({})",
                header.totalsize
            ),
        )),
    };
    inside("the structure block", header.off_struct, header.size_struct)?;
    inside("the strings block", header.off_strings, header.size_strings)?;
    inside("the memory reservation block", header.off_rsvmap, 16)?;
    if header.off_struct % 4 != 0 || header.off_rsvmap % 8 != 0 {
        return Err(corrupt(
            NAME,
            "the structure or reservation block is misaligned",
        ));
    }
    if header.size_strings > MAX_STRINGS {
        return Err(corrupt(
            NAME,
            format!(
                "a strings block of {} bytes (at most {MAX_STRINGS} are read)",
                header.size_strings
            ),
        ));
    }
    Ok(header)
}

/// Walks the structure block of `source`.
pub(super) fn read_tree(source: &dyn Source) -> Result<Tree, Error> {
    let header = read_header(source)?;
    let strings = source.read_at(
        header.off_strings,
        usize::try_from(header.size_strings).unwrap_or(0),
    )?;
    let mut w = Window {
        source,
        start: 0,
        buf: Vec::new(),
    };
    let end = header.off_struct + header.size_struct;
    let mut pos = header.off_struct;
    let mut stack: Vec<String> = Vec::new();
    let mut seen: Vec<Names> = Vec::new();
    let mut props = Vec::new();
    let mut nodes = Vec::new();
    let mut node_tokens = Vec::new();
    let mut done = false;
    while pos < end {
        let tag = w.u32(pos)?;
        let at = pos;
        pos += 4;
        match tag {
            BEGIN_NODE => {
                if stack.len() >= MAX_DEPTH {
                    return Err(corrupt(
                        NAME,
                        format!("nodes nested deeper than {MAX_DEPTH}"),
                    ));
                }
                let name = read_name(&mut w, pos, end)?;
                pos = (pos + name.len() as u64 + 1).next_multiple_of(4);
                if stack.is_empty() && !nodes.is_empty() {
                    return Err(corrupt(NAME, format!("a second root node at {at:#x}")));
                }
                let mut name = String::from_utf8_lossy(&name).into_owned();
                if let Some(siblings) = seen.last_mut() {
                    name = unique(siblings, name);
                }
                let path = match stack.last() {
                    None => String::new(),
                    Some(p) if p.is_empty() => name,
                    Some(p) => format!("{p}/{name}"),
                };
                if nodes.len() >= MAX_PARTS {
                    return Err(corrupt(NAME, format!("more than {MAX_PARTS} nodes")));
                }
                nodes.push(path.clone());
                node_tokens.push(at);
                stack.push(path);
                seen.push(Names::default());
            }
            END_NODE => {
                if stack.pop().is_none() {
                    return Err(corrupt(
                        NAME,
                        format!("an unmatched end of node at {at:#x}"),
                    ));
                }
                seen.pop();
            }
            PROP => {
                let len = u64::from(w.u32(pos)?);
                let nameoff = u64::from(w.u32(pos + 4)?);
                let value = pos + 8;
                let Some(node) = stack.last() else {
                    return Err(corrupt(
                        NAME,
                        format!("a property outside every node at {at:#x}"),
                    ));
                };
                if value.checked_add(len).is_none_or(|e| e > end) {
                    return Err(corrupt(
                        NAME,
                        format!(
                            "a property at {at:#x} of {len} bytes runs past the structure block"
                        ),
                    ));
                }
                let name = prop_name(&strings, nameoff).ok_or_else(|| {
                    corrupt(
                        NAME,
                        format!("a property at {at:#x} names no string (nameoff {nameoff})"),
                    )
                })?;
                let siblings = seen.last_mut().expect("a node is open");
                let name = unique(siblings, name);
                if props.len() >= MAX_PARTS {
                    return Err(corrupt(NAME, format!("more than {MAX_PARTS} properties")));
                }
                props.push(Property {
                    node: node.clone(),
                    name,
                    token: at,
                    value,
                    len,
                });
                pos = (value + len).next_multiple_of(4);
            }
            NOP => {}
            END => {
                done = true;
                break;
            }
            other => {
                return Err(corrupt(
                    NAME,
                    format!("an unknown token {other:#x} at {at:#x}"),
                ));
            }
        }
    }
    if !done || !stack.is_empty() {
        return Err(corrupt(NAME, "the structure block has no end"));
    }
    Ok(Tree {
        header,
        props,
        nodes,
        node_tokens,
    })
}

/// One `partition@…` child of a `fixed-partitions` node (the MTD partitions binding).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    /// The child node's path (`flash@0/partitions/partition@0`).
    pub node: String,
    /// Its `label`, else its node name before `@` (cleaned as part names are).
    pub label: String,
    pub offset: u64,
    pub size: u64,
}

/// The partitions of every `fixed-partitions` node of the blob at the start of `source`, and
/// what could not be read (a `reg` too short, cells other than 1 or 2, an end past 2^64),
/// each in words. Values are read only up to [`MAX_FIELD_VALUE`]; the walk is
/// [`read_tree`]'s, with its bounds.
pub(crate) fn partitions(source: &dyn Source) -> Result<(Vec<Partition>, Vec<String>), Error> {
    let tree = read_tree(source)?;
    let value = |p: &Property| -> Result<Vec<u8>, Error> {
        Ok(source.read_at(p.value, super::to_usize(p.len.min(MAX_FIELD_VALUE)))?)
    };
    // Every lookup goes through one index: a crafted tree of many nodes stays linear.
    let props: HashMap<(&str, &str), &Property> = tree
        .props
        .iter()
        .map(|p| ((p.node.as_str(), p.name.as_str()), p))
        .collect();
    let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
    for node in &tree.nodes {
        if let Some((parent, _)) = node.rsplit_once('/') {
            children.entry(parent).or_default().push(node);
        } else if !node.is_empty() {
            children.entry("").or_default().push(node);
        }
    }
    let mut out = Vec::new();
    let mut faults = Vec::new();
    let mut holders = 0usize;
    for holder in tree.props.iter().filter(|p| p.name == "compatible") {
        if !value(holder)?
            .split(|&b| b == 0)
            .any(|c| c == b"fixed-partitions")
        {
            continue;
        }
        holders += 1;
        if holders > MAX_PARTITION_NODES {
            faults.push(format!(
                "more than {MAX_PARTITION_NODES} `fixed-partitions` nodes: the rest are not read"
            ));
            break;
        }
        let node = holder.node.as_str();
        let cells = |name: &str, default: u32| -> Result<u32, Error> {
            match props.get(&(node, name)) {
                Some(p) => Ok(value(p)?.get(..4).map_or(u32::MAX, |b| be32(b, 0))),
                None => Ok(default),
            }
        };
        // The Devicetree Specification's defaults, when a node leaves them out.
        let (ac, sc) = (cells("#address-cells", 2)?, cells("#size-cells", 1)?);
        if !(1..=2).contains(&ac) || !(1..=2).contains(&sc) {
            faults.push(format!(
                "`/{node}`: #address-cells {ac} and #size-cells {sc} (1 or 2 are read)"
            ));
            continue;
        }
        for &child in children.get(node).map_or(&[][..], Vec::as_slice) {
            let Some(reg) = props.get(&(child, "reg")) else {
                continue;
            };
            let reg = value(reg)?;
            let cell = |from: u32, n: u32| -> Option<u64> {
                let b = reg.get(from as usize * 4..(from + n) as usize * 4)?;
                Some(
                    b.chunks_exact(4)
                        .fold(0u64, |v, c| (v << 32) | u64::from(be32(c, 0))),
                )
            };
            let (Some(offset), Some(size)) = (cell(0, ac), cell(ac, sc)) else {
                faults.push(format!(
                    "`/{child}`: `reg` of {} bytes holds no address and size",
                    reg.len()
                ));
                continue;
            };
            if offset.checked_add(size).is_none() {
                faults.push(format!("`/{child}`: {offset:#x}+{size:#x} ends past 2^64"));
                continue;
            }
            let name = child.rsplit('/').next().unwrap_or(child);
            let label = match props.get(&(child, "label")) {
                Some(p) => super::clean_name(&value(p)?),
                None => name.split('@').next().unwrap_or(name).to_owned(),
            };
            out.push(Partition {
                node: child.to_owned(),
                label,
                offset,
                size,
            });
        }
    }
    Ok((out, faults))
}

/// Names given out so far, and the next suffix to try for each.
#[derive(Default)]
struct Names {
    taken: HashSet<String>,
    next: HashMap<String, u32>,
}

/// A name unique among `seen`: `name`, or `name#2`, `name#3`, … (the suffix counter is kept
/// per name, so a crafted tree of one name repeated stays linear).
fn unique(seen: &mut Names, name: String) -> String {
    if seen.taken.insert(name.clone()) {
        return name;
    }
    let n = seen.next.entry(name.clone()).or_insert(1);
    loop {
        *n += 1;
        let out = format!("{name}#{n}");
        if seen.taken.insert(out.clone()) {
            return out;
        }
    }
}

/// A NUL-terminated node name at `pos`, within the structure block.
fn read_name(w: &mut Window<'_>, pos: u64, end: u64) -> Result<Vec<u8>, Error> {
    let room = usize::try_from(end - pos)
        .unwrap_or(usize::MAX)
        .min(MAX_NAME + 1);
    let bytes = w.get(pos, room)?;
    match bytes.iter().position(|&b| b == 0) {
        Some(n) => Ok(bytes[..n].to_vec()),
        None => Err(corrupt(
            NAME,
            format!("a node name at {pos:#x} has no end within {MAX_NAME} bytes"),
        )),
    }
}

fn prop_name(strings: &[u8], nameoff: u64) -> Option<String> {
    let start = usize::try_from(nameoff).ok()?;
    let rest = strings.get(start..)?;
    let n = rest.iter().take(MAX_NAME + 1).position(|&b| b == 0)?;
    Some(String::from_utf8_lossy(&rest[..n]).into_owned())
}

/// What a property's value holds, by its name and place.
pub(super) fn value_kind(prop: &Property, value: &[u8]) -> FieldKind {
    let node = prop.node_name();
    match prop.name.as_str() {
        "timestamp" if prop.node.is_empty() => FieldKind::Timestamp,
        "value" if node.starts_with("hash") || node.starts_with("signature") => FieldKind::Checksum,
        "data-size" | "data-offset" | "data-position" => FieldKind::Length,
        _ if is_text(value) => FieldKind::Text,
        _ => FieldKind::Number,
    }
}

/// Printable strings, each NUL-terminated (a `compatible` list, `bootargs`).
fn is_text(value: &[u8]) -> bool {
    value.last() == Some(&0)
        && value[0] != 0
        && !value.windows(2).any(|w| w == [0, 0])
        && value.iter().all(|&b| b == 0 || (0x20..0x7f).contains(&b))
}

/// A value for people: strings quoted, cells as `<0x… 0x…>`, other bytes in hex, a timestamp
/// with its date.
pub(super) fn show_value(kind: FieldKind, value: &[u8]) -> String {
    if kind == FieldKind::Timestamp && value.len() == 4 {
        return epoch(i64::from(be32(value, 0)));
    }
    if is_text(value) {
        let list: Vec<String> = value[..value.len() - 1]
            .split(|&b| b == 0)
            .map(|s| format!("\"{}\"", text(s)))
            .collect();
        return text(list.join(", ").as_bytes());
    }
    if kind == FieldKind::Length && value.len() == 4 {
        return number(u64::from(be32(value, 0)));
    }
    if value.len() % 4 == 0 && !value.is_empty() && value.len() <= 64 {
        let cells: Vec<String> = value
            .chunks(4)
            .map(|c| format!("{:#x}", be32(c, 0)))
            .collect();
        return format!("<{}>", cells.join(" "));
    }
    format!("[{}]", hex(value))
}

/// The parts of a property: its token as a header, its value a field — or, for a long value or
/// a payload, the token and a part of its own named `payload`.
pub(super) fn property_parts(
    source: &dyn Source,
    header: &Header,
    prop: &Property,
    payload: Option<String>,
    out: &mut Vec<Part>,
) -> Result<(), Error> {
    // The alignment padding after the value (up to the next token) belongs to the property.
    let value_end = prop.value + prop.len;
    let pad_end = value_end
        .next_multiple_of(4)
        .min(header.off_struct + header.size_struct)
        .max(value_end);
    let mut fields = vec![
        Field {
            name: "len",
            offset: 4,
            len: 4,
            value: number(prop.len),
            kind: FieldKind::Length,
        },
        Field {
            name: "nameoff",
            offset: 8,
            len: 4,
            value: String::new(),
            kind: FieldKind::Length,
        },
    ];
    // The name offset says nothing for people: the name is the part's. Its value is the raw
    // number, so a change still reads as one.
    let raw = source.read_at(prop.token + 8, 4)?;
    fields[1].value = u64::from(be32(&raw, 0)).to_string();
    let split = payload.is_some() || prop.len > MAX_FIELD_VALUE;
    let mut len = 12;
    if !split && prop.len > 0 {
        let value = source.read_at(prop.value, usize::try_from(prop.len).unwrap_or(0))?;
        let kind = value_kind(prop, &value);
        fields.push(Field {
            name: "value",
            offset: 12,
            len: prop.len,
            value: show_value(kind, &value),
            kind,
        });
        len = pad_end - prop.token;
    }
    out.push(Part {
        name: prop.path(),
        offset: prop.token,
        len,
        role: Role::Header,
        fields,
        packed: None,
    });
    if split {
        let name = payload.unwrap_or_else(|| format!("{}:value", prop.path()));
        pad_part(&name, value_end, pad_end, out);
        out.insert(
            out.len() - usize::from(pad_end > value_end),
            Part {
                name,
                offset: prop.value,
                len: prop.len,
                role: Role::Payload,
                fields: Vec::new(),
                packed: None,
            },
        );
    }
    Ok(())
}

/// The fill from `start` to `end` after the payload `name`, as a padding part `<name>:pad`:
/// the comparison passes over fill that only moved with a payload's length.
pub(super) fn pad_part(name: &str, start: u64, end: u64, out: &mut Vec<Part>) {
    if end > start {
        out.push(Part {
            name: format!("{name}:pad"),
            offset: start,
            len: end - start,
            role: Role::Padding,
            fields: Vec::new(),
            packed: None,
        });
    }
}

/// The header, reservation block and strings block as parts.
pub(super) fn block_parts(
    source: &dyn Source,
    header: &Header,
    out: &mut Vec<Part>,
) -> Result<(), Error> {
    let h = source.read_at(0, HEADER_BYTES)?;
    let f = |name: &'static str, at: usize, kind: FieldKind| Field {
        name,
        offset: at as u64,
        len: 4,
        value: if kind == FieldKind::Length {
            number(u64::from(be32(&h, at)))
        } else {
            be32(&h, at).to_string()
        },
        kind,
    };
    out.push(Part {
        name: "header".into(),
        offset: 0,
        len: HEADER_LEN,
        role: Role::Header,
        fields: vec![
            Field {
                name: "magic",
                offset: 0,
                len: 4,
                value: format!("{:#010x}", be32(&h, 0)),
                kind: FieldKind::Number,
            },
            f("totalsize", 4, FieldKind::Length),
            f("off_dt_struct", 8, FieldKind::Length),
            f("off_dt_strings", 12, FieldKind::Length),
            f("off_mem_rsvmap", 16, FieldKind::Length),
            f("version", 20, FieldKind::Number),
            f("last_comp_version", 24, FieldKind::Number),
            f("boot_cpuid_phys", 28, FieldKind::Number),
            f("size_dt_strings", 32, FieldKind::Length),
            f("size_dt_struct", 36, FieldKind::Length),
        ],
        packed: None,
    });
    // The reservation block: 16-byte entries up to an all-zero one, before the next block.
    let limit = [header.off_struct, header.off_strings, header.totalsize]
        .into_iter()
        .filter(|&o| o > header.off_rsvmap)
        .min()
        .unwrap_or(header.totalsize);
    let room = limit
        .saturating_sub(header.off_rsvmap)
        .min(16 * MAX_PARTS as u64);
    let block = source.read_at(header.off_rsvmap, usize::try_from(room).unwrap_or(0))?;
    let entries = block
        .chunks_exact(16)
        .position(|e| e.iter().all(|&b| b == 0))
        .ok_or_else(|| corrupt(NAME, "the memory reservation block has no end"))?;
    out.push(Part {
        name: "memreserve".into(),
        offset: header.off_rsvmap,
        len: (entries as u64 + 1) * 16,
        role: Role::Other,
        fields: Vec::new(),
        packed: None,
    });
    if header.size_strings > 0 {
        out.push(Part {
            name: "strings".into(),
            offset: header.off_strings,
            len: header.size_strings,
            role: Role::Other,
            fields: Vec::new(),
            packed: None,
        });
    }
    Ok(())
}

/// A part per node: its `FDT_BEGIN_NODE` token and name, named by its path and a `/` (`/`
/// for the root, `chosen/`).
pub(super) fn node_parts(tree: &Tree, out: &mut Vec<Part>) {
    for (path, &at) in tree.nodes.iter().zip(&tree.node_tokens) {
        let name_len = if path.is_empty() {
            0
        } else {
            path.rsplit('/').next().map_or(0, str::len) as u64
        };
        out.push(Part {
            name: format!("{path}/"),
            offset: at,
            len: (4 + name_len + 1).next_multiple_of(4),
            role: Role::Other,
            fields: Vec::new(),
            packed: None,
        });
    }
}

/// Orders `parts` by offset and refuses overlapping ones (a crafted blob whose blocks share
/// bytes). Then each part of the structure block starts where the part before it ends: the
/// `FDT_END_NODE` and `FDT_NOP` tokens before a token belong to it, so a property added at
/// the end of a node moves no gap.
pub(super) fn order(
    format: &'static str,
    header: &Header,
    parts: &mut [Part],
) -> Result<(), Error> {
    if parts.len() > MAX_PARTS {
        return Err(corrupt(format, format!("more than {MAX_PARTS} parts")));
    }
    parts.sort_by_key(|p| (p.offset, p.len));
    // Names made of a crafted tree's names may meet (`a/b` the property, `a/b/` the node
    // `b/`): the later one gets a suffix.
    let mut seen = Names::default();
    for p in parts.iter_mut() {
        let name = std::mem::take(&mut p.name);
        p.name = unique(&mut seen, name);
    }
    for pair in parts.windows(2) {
        if pair[0].offset + pair[0].len > pair[1].offset {
            return Err(corrupt(
                format,
                format!("`{}` and `{}` overlap", pair[0].name, pair[1].name),
            ));
        }
    }
    let (start, end) = (header.off_struct, header.off_struct + header.size_struct);
    for i in 1..parts.len() {
        let prev_end = parts[i - 1].offset + parts[i - 1].len;
        let p = &mut parts[i];
        let absorbs = !matches!(p.role, Role::Payload | Role::Padding);
        if prev_end >= start && p.offset < end && prev_end < p.offset && absorbs {
            let delta = p.offset - prev_end;
            p.offset = prev_end;
            p.len += delta;
            for f in &mut p.fields {
                f.offset += delta;
            }
        }
    }
    Ok(())
}

pub(super) fn map(source: &dyn Source) -> Result<Map, Error> {
    let tree = read_tree(source)?;
    let mut parts = Vec::with_capacity(tree.props.len() + 3);
    block_parts(source, &tree.header, &mut parts)?;
    node_parts(&tree, &mut parts);
    for prop in &tree.props {
        property_parts(source, &tree.header, prop, None, &mut parts)?;
    }
    order(NAME, &tree.header, &mut parts)?;
    Ok(Map {
        format: Format::Dtb,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::mutate::{self, Bytes};
    use super::*;

    const BOARD: &[u8] = include_bytes!("../../testdata/firmware/board.dtb");

    fn part<'m>(m: &'m Map, name: &str) -> &'m Part {
        m.parts.iter().find(|p| p.name == name).unwrap_or_else(|| {
            panic!(
                "no part `{name}` in {:?}",
                m.parts.iter().map(|p| &p.name).collect::<Vec<_>>()
            )
        })
    }

    fn value(p: &Part) -> &Field {
        p.fields.iter().find(|f| f.name == "value").unwrap()
    }

    #[test]
    fn a_blob_is_its_blocks_and_one_part_per_property() {
        assert_eq!(
            super::super::identify(&Bytes(BOARD)).unwrap(),
            Some(Format::Dtb)
        );
        let m = map(&Bytes(BOARD)).unwrap();
        let names: Vec<&str> = m.parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "header",
                "memreserve",
                "/",
                "model",
                "compatible",
                "#address-cells",
                "#size-cells",
                "chosen/",
                "chosen/bootargs",
                "memory@80000000/",
                "memory@80000000/device_type",
                "memory@80000000/reg",
                "strings",
            ]
        );
        let bootargs = value(part(&m, "chosen/bootargs"));
        assert_eq!(
            bootargs.value,
            "\"console=ttyS0,115200 root=/dev/mmcblk0p2\""
        );
        assert_eq!(bootargs.kind, FieldKind::Text);
        assert_eq!(
            value(part(&m, "compatible")).value,
            "\"reprove,test\", \"acme,board\""
        );
        assert_eq!(
            value(part(&m, "memory@80000000/reg")).value,
            "<0x80000000 0x10000000>"
        );
        assert_eq!(
            value(part(&m, "memory@80000000/reg")).kind,
            FieldKind::Number
        );
        let header = part(&m, "header");
        assert_eq!(header.fields[1].name, "totalsize");
        assert_eq!(header.fields[1].value, "377 (0x179)");
    }

    #[test]
    fn crafted_blobs_are_corrupt_not_panics() {
        let set = |at: usize, v: u32| {
            let mut b = BOARD.to_vec();
            b[at..at + 4].copy_from_slice(&v.to_be_bytes());
            map(&Bytes(&b)).unwrap_err().to_string()
        };
        assert!(set(4, u32::MAX).contains("runs past the end"));
        assert!(set(8, 0x7fff_fff0).contains("runs past `totalsize`"));
        assert!(set(32, 1 << 30).contains("runs past `totalsize`"));
        // The first property's length, set past the structure block.
        let first_prop = 0x38 + 8;
        assert!(set(first_prop + 4, 0xffff_0000).contains("runs past the structure block"));
        // Its name offset, set past the strings.
        assert!(set(first_prop + 8, 0x10_0000).contains("names no string"));
        // A tree nested deeper than the bound: BEGIN_NODE tokens with empty names.
        let mut deep = BOARD[..0x38].to_vec();
        for _ in 0..=MAX_DEPTH {
            deep.extend_from_slice(&BEGIN_NODE.to_be_bytes());
            deep.extend_from_slice(&[0; 4]);
        }
        let len = u32::try_from(deep.len()).unwrap();
        deep[4..8].copy_from_slice(&len.to_be_bytes());
        deep[12..16].copy_from_slice(&len.to_be_bytes());
        deep[32..36].copy_from_slice(&0u32.to_be_bytes());
        deep[36..40].copy_from_slice(&(len - 0x38).to_be_bytes());
        let err = map(&Bytes(&deep)).unwrap_err().to_string();
        assert!(err.contains("deeper than"), "{err}");
    }

    proptest! {
        #[test]
        fn mutated_blobs_never_break_the_reader(m in mutate::mutations()) {
            let image = mutate::apply(BOARD, &m);
            mutate::check(Format::Dtb, &Bytes(&image));
        }
    }
}
