//! The dump's own layout on dumps made here: tables found, kinds, flattening, bounds, and the
//! rule that a dump's own word never masks a byte.

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;
use crate::dump::{check_dump, Options, Release, Status};
use crate::verify::Verdict;

use crate::dump::noise;

/// An FMAP (version 1.1) describing `size` bytes with `areas` (offset, size, name).
fn fmap(size: u32, areas: &[(u32, u32, &str)]) -> Vec<u8> {
    let mut out = b"__FMAP__\x01\x01".to_vec();
    out.extend(0u64.to_le_bytes());
    out.extend(size.to_le_bytes());
    let mut name = [0u8; 32];
    name[..5].copy_from_slice(b"FLASH");
    out.extend(name);
    out.extend(u16::try_from(areas.len()).unwrap().to_le_bytes());
    for &(offset, len, n) in areas {
        out.extend(offset.to_le_bytes());
        out.extend(len.to_le_bytes());
        let mut name = [0u8; 32];
        name[..n.len()].copy_from_slice(n.as_bytes());
        out.extend(name);
        out.extend(0u16.to_le_bytes());
    }
    out
}

/// A device tree: `/flash/partitions` (`fixed-partitions`, the given cells) with one child
/// per (label, reg cells).
fn dtb(address_cells: u32, size_cells: u32, parts: &[(&str, &[u32])]) -> Vec<u8> {
    let mut strings: Vec<u8> = Vec::new();
    let mut name_at = |n: &str| -> u32 {
        let at = u32::try_from(strings.len()).unwrap();
        strings.extend(n.as_bytes());
        strings.push(0);
        at
    };
    let (compatible, ac, sc, reg, label) = (
        name_at("compatible"),
        name_at("#address-cells"),
        name_at("#size-cells"),
        name_at("reg"),
        name_at("label"),
    );
    let mut st: Vec<u8> = Vec::new();
    let begin = |st: &mut Vec<u8>, name: &str| {
        st.extend(1u32.to_be_bytes());
        st.extend(name.as_bytes());
        st.push(0);
        while st.len() % 4 != 0 {
            st.push(0);
        }
    };
    let prop = |st: &mut Vec<u8>, nameoff: u32, value: &[u8]| {
        st.extend(3u32.to_be_bytes());
        st.extend(u32::try_from(value.len()).unwrap().to_be_bytes());
        st.extend(nameoff.to_be_bytes());
        st.extend(value);
        while st.len() % 4 != 0 {
            st.push(0);
        }
    };
    begin(&mut st, "");
    begin(&mut st, "flash");
    begin(&mut st, "partitions");
    prop(&mut st, compatible, b"fixed-partitions\0");
    prop(&mut st, ac, &address_cells.to_be_bytes());
    prop(&mut st, sc, &size_cells.to_be_bytes());
    for (i, (l, cells)) in parts.iter().enumerate() {
        begin(&mut st, &format!("partition@{i}"));
        let value: Vec<u8> = cells.iter().flat_map(|c| c.to_be_bytes()).collect();
        prop(&mut st, reg, &value);
        prop(&mut st, label, format!("{l}\0").as_bytes());
        st.extend(2u32.to_be_bytes());
    }
    for _ in 0..3 {
        st.extend(2u32.to_be_bytes());
    }
    st.extend(9u32.to_be_bytes());
    let off_rsv = 40u32;
    let off_struct = off_rsv + 16;
    let off_strings = off_struct + u32::try_from(st.len()).unwrap();
    let total = off_strings + u32::try_from(strings.len()).unwrap();
    let mut out = Vec::new();
    for v in [
        0xd00d_feed,
        total,
        off_struct,
        off_strings,
        off_rsv,
        17,
        16,
        0,
        u32::try_from(strings.len()).unwrap(),
        u32::try_from(st.len()).unwrap(),
    ] {
        out.extend(v.to_be_bytes());
    }
    out.extend([0u8; 16]);
    out.extend(st);
    out.extend(strings);
    out
}

fn own(dump: &[u8], pinned: &[&str]) -> OwnLayout {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dump.bin");
    std::fs::write(&path, dump).unwrap();
    let file = File::open(&path).unwrap();
    let pinned: Vec<String> = pinned.iter().map(|p| (*p).to_owned()).collect();
    read_layout(&file, dump.len() as u64, &pinned).unwrap()
}

/// Regions in order, inside the dump, without overlap, each saying where the dump says so.
fn well_formed(layout: &OwnLayout, size: u64) {
    let mut end = 0;
    for r in &layout.regions {
        assert!(r.offset >= end, "{r:?} overlaps the region before it");
        assert!(
            r.size > 0 && r.end() <= size,
            "{r:?} is not inside the dump"
        );
        assert!(r.described_by.is_some(), "{r:?} has no source");
        assert!(r.artifact.is_none());
        end = r.end();
    }
}

fn region(layout: &OwnLayout, at: u64) -> &Region {
    layout
        .regions
        .iter()
        .find(|r| r.offset <= at && at < r.end())
        .unwrap_or_else(|| panic!("no region at {at:#x}: {:#?}", layout.regions))
}

#[test]
fn names_match_their_rows() {
    assert!(matches("UNUSED|RW_UNUSED|*_UNUSED", "RW_UNUSED"));
    assert!(matches("UNUSED|RW_UNUSED|*_UNUSED", "ro_unused"));
    assert!(matches("COREBOOT|FW_MAIN_*", "FW_MAIN_B"));
    assert!(matches("*VPD*", "RO_VPD"));
    assert!(!matches("COREBOOT|FW_MAIN_*", "RW_FWID_A"));
    assert!(!matches("art", "partition"));
    let kind = |name| rule(FMAP_KINDS, name, "other").0;
    assert_eq!(kind("RW_UNUSED"), Rule::Kind(RegionKind::Erased));
    assert_eq!(kind("FW_MAIN_A"), Rule::Kind(RegionKind::Release));
    assert_eq!(kind("RW_VPD"), Rule::Kind(RegionKind::DeviceData));
    assert_eq!(kind("SI_ME"), Rule::PinnedOrOther);
    assert_eq!(kind("RW_MRC_CACHE"), Rule::Kind(RegionKind::Config));
    assert_eq!(kind("GBB"), Rule::Kind(RegionKind::Other));
    assert_eq!(
        rule(DT_KINDS, "u-boot-env", "other").0,
        Rule::Kind(RegionKind::Config)
    );
    assert_eq!(
        rule(DT_KINDS, "art", "other").0,
        Rule::Kind(RegionKind::DeviceData)
    );
}

#[test]
fn an_fmap_nests_and_an_unused_area_stays_strict() {
    let size = 0x2_0000u32;
    let mut dump = vec![0xffu8; size as usize];
    let table = fmap(
        size,
        &[
            (0, size, "BIOS"),
            (0x1000, 0x100, "FMAP"),
            (0x2000, 0x2000, "RO_VPD"),
            (0x8000, 0x8000, "UNUSED"),
            // Carved out of unused flash: the unused area keeps it.
            (0x9000, 0x1000, "HIDDEN"),
            // Overlaps without nesting: noted.
            (0x3000, 0x2000, "SI_ME"),
            // Cut at the dump's end; past it, left out.
            (0x1_f000, 0x2000, "RW_ELOG"),
            (0x3_0000, 0x1000, "FAR"),
        ],
    );
    dump[0x1000..0x1000 + table.len()].copy_from_slice(&table);
    let layout = own(&dump, &["SI_ME"]);
    well_formed(&layout, u64::from(size));
    assert_eq!(layout.tables.len(), 1);
    assert_eq!(layout.tables[0].offset, 0x1000);
    assert_eq!(layout.tables[0].areas, 8);
    assert_eq!(
        layout.source().as_deref(),
        Some("the dump's FMAP at 0x1000")
    );
    assert_eq!(region(&layout, 0x1000).name, "FMAP");
    assert_eq!(region(&layout, 0x1800).name, "BIOS");
    assert_eq!(region(&layout, 0x2000).kind, RegionKind::DeviceData);
    assert_eq!(
        region(&layout, 0x2000).described_by.as_deref(),
        Some("FMAP at 0x1000, area RO_VPD")
    );
    let hidden = region(&layout, 0x9800);
    assert_eq!(
        (hidden.name.as_str(), hidden.kind),
        ("UNUSED", RegionKind::Erased)
    );
    let me = region(&layout, 0x4800);
    assert_eq!(
        (me.kind, me.blob.as_deref()),
        (RegionKind::Blob, Some("SI_ME"))
    );
    assert_eq!(region(&layout, 0x1_ffff).name, "RW_ELOG");
    let notes = layout.notes.join("\n");
    assert!(
        notes.contains("area SI_ME (0x3000-0x5000) overlaps FMAP at 0x1000, area RO_VPD"),
        "{notes}"
    );
    assert!(
        notes.contains("area RW_ELOG: 0x1f000-0x21000 ends past the dump's end 0x20000"),
        "{notes}"
    );
    assert!(
        notes.contains("area FAR: 0x30000-0x31000 lies past the dump's end"),
        "{notes}"
    );
    // Without a pin, a vendor binary is only named.
    assert_eq!(region(&own(&dump, &[]), 0x4800).kind, RegionKind::Other);
}

#[test]
fn absurd_tables_are_bounded_and_told() {
    let size = 0x10_0000u32;
    // A count whose table runs past the dump.
    let mut dump = vec![0xffu8; size as usize];
    let mut table = fmap(size, &[(0, 0x1000, "FMAP")]);
    table[54..56].copy_from_slice(&u16::MAX.to_le_bytes());
    let at = size as usize - 0x1000;
    dump[at..at + table.len()].copy_from_slice(&table);
    let layout = own(&dump, &[]);
    assert!(layout.regions.is_empty());
    assert!(
        layout.notes.iter().any(|n| n.contains("could not be read")),
        "{:?}",
        layout.notes
    );
    // More areas than are read.
    let areas: Vec<(u32, u32, String)> = (0..3000u32)
        .map(|i| (0x1000 + i * 0x100, 0x100, format!("A{i}")))
        .collect();
    let refs: Vec<(u32, u32, &str)> = areas.iter().map(|(o, s, n)| (*o, *s, n.as_str())).collect();
    let table = fmap(size, &refs);
    let mut dump = vec![0xffu8; size as usize];
    dump[..table.len()].copy_from_slice(&table);
    let start = Instant::now();
    let layout = own(&dump, &[]);
    assert!(start.elapsed() < Duration::from_secs(20));
    well_formed(&layout, u64::from(size));
    assert_eq!(layout.regions.len(), MAX_AREAS);
    assert!(
        layout
            .notes
            .iter()
            .any(|n| n.contains("the first 1024 are read")),
        "{:?}",
        layout.notes
    );
}

#[test]
fn thousands_of_trees_are_not_each_walked() {
    let tree = dtb(1, 1, &[("u-boot", &[0, 0x1000])]);
    let step = tree.len().next_multiple_of(4);
    let mut dump = vec![0xffu8; 0x10_0000];
    for k in 0..1000 {
        dump[k * step..k * step + tree.len()].copy_from_slice(&tree);
    }
    let start = Instant::now();
    let layout = own(&dump, &[]);
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(layout.tables.len(), MAX_WALKS);
    assert!(
        layout
            .notes
            .iter()
            .any(|n| n.contains("more than 64 device trees and volumes")),
        "{:?}",
        layout.notes
    );
}

#[test]
fn a_device_tree_lists_its_partitions_and_its_faults() {
    let mut dump = vec![0xffu8; 0x4_0000];
    let tree = dtb(
        2,
        2,
        &[
            ("u-boot", &[0, 0, 0, 0x1_0000]),
            ("art", &[0, 0x1_0000, 0, 0x1000]),
            ("firmware", &[0, 0x2_0000, 0, 0x2_0000]),
            // An end past 2^64, and a `reg` too short: told, left out.
            ("huge", &[0xffff_ffff, 0xffff_f000, 0, 0x2000]),
            ("short", &[0, 0x3_0000]),
        ],
    );
    dump[0x1_1000..0x1_1000 + tree.len()].copy_from_slice(&tree);
    let layout = own(&dump, &[]);
    well_formed(&layout, 0x4_0000);
    assert_eq!(layout.tables[0].format, TableFormat::DeviceTree);
    assert_eq!(layout.tables[0].offset, 0x1_1000);
    assert_eq!(layout.tables[0].areas, 3);
    assert_eq!(region(&layout, 0).kind, RegionKind::Bootloader);
    assert_eq!(region(&layout, 0x1_0000).kind, RegionKind::DeviceData);
    assert_eq!(region(&layout, 0x3_ffff).kind, RegionKind::Release);
    let notes = layout.notes.join("\n");
    assert!(
        notes.contains("partition@3`: 0xfffffffffffff000+0x2000 ends past 2^64"),
        "{notes}"
    );
    assert!(
        notes.contains("partition@4`: `reg` of 8 bytes holds no address and size"),
        "{notes}"
    );
    // Cells the binding does not allow.
    let mut dump = vec![0xffu8; 0x1_0000];
    let tree = dtb(3, 1, &[("u-boot", &[0, 0, 0, 0x1000])]);
    dump[..tree.len()].copy_from_slice(&tree);
    let layout = own(&dump, &[]);
    assert!(layout.regions.is_empty());
    assert!(
        layout.notes.iter().any(|n| n.contains("#address-cells 3")),
        "{:?}",
        layout.notes
    );
}

#[test]
fn a_flash_descriptor_names_its_regions() {
    let mut dump = vec![0xffu8; 0x2_0000];
    dump[0x10..0x14].copy_from_slice(&0x0FF0_A55Au32.to_le_bytes());
    // FRBA = 0x40.
    dump[0x14..0x18].copy_from_slice(&(4u32 << 16).to_le_bytes());
    for (i, word) in [
        0x0000_0000u32, // descriptor: 0..0x1000
        0x001f_0001,    // bios: 0x1000..0x20000
        0x0000_7fff,    // me: unused
        0x0020_0020,    // gbe: past the dump's end
        0xffff_ffff,    // pdr: absent
    ]
    .iter()
    .enumerate()
    {
        dump[0x40 + i * 4..0x44 + i * 4].copy_from_slice(&word.to_le_bytes());
    }
    let layout = own(&dump, &[]);
    well_formed(&layout, 0x2_0000);
    assert_eq!(layout.tables[0].format, TableFormat::Ifd);
    assert_eq!(layout.tables[0].areas, 3);
    assert_eq!(region(&layout, 0).name, "descriptor");
    assert_eq!(region(&layout, 0x1000).name, "bios");
    assert!(
        layout
            .notes
            .iter()
            .any(|n| n.contains("region gbe: 0x20000-0x21000 lies past")),
        "{:?}",
        layout.notes
    );
}

/// Debian's OVMF: two FFS volumes; the free space each declares holds only its erase byte.
#[test]
fn ovmf_volumes_and_their_free_space() {
    let path = Path::new("/usr/share/OVMF/OVMF_CODE.fd");
    let file = File::open(path).expect("ovmf is installed (scripts/deps.sh)");
    let size = file.metadata().unwrap().len();
    let layout = read_layout(&file, size, &[]).unwrap();
    well_formed(&layout, size);
    assert_eq!(layout.tables.len(), 2, "{:?}", layout.tables);
    assert!(layout
        .tables
        .iter()
        .all(|t| t.format == TableFormat::UefiVolume));
    let free: Vec<&Region> = layout
        .regions
        .iter()
        .filter(|r| r.kind == RegionKind::Erased)
        .collect();
    assert!(!free.is_empty(), "{:#?}", layout.regions);
    let opts = Options {
        layout: layout.flash(),
        ..Options::default()
    };
    let report = check_dump(path, "OVMF_CODE.fd", &[], &opts).unwrap();
    assert_eq!(report.verdict, Verdict::Identical, "{:#?}", report.spans);
    assert!(report
        .spans
        .iter()
        .all(|s| s.status != Status::Failed && s.coverage.masked == 0));
}

/// A small dump holding every kind of table, with a release inside.
fn hostile_base() -> (Vec<u8>, Vec<u8>) {
    let size = 0x4_0000u32;
    let release = noise(0x6000, 3);
    let mut dump = vec![0xffu8; size as usize];
    dump[0x10..0x14].copy_from_slice(&0x0FF0_A55Au32.to_le_bytes());
    dump[0x14..0x18].copy_from_slice(&(4u32 << 16).to_le_bytes());
    for (i, word) in [0x0000_0000u32, 0x003f_0001, 0x0000_7fff, 0x0002_0002]
        .iter()
        .enumerate()
    {
        dump[0x40 + i * 4..0x44 + i * 4].copy_from_slice(&word.to_le_bytes());
    }
    let table = fmap(
        size,
        &[
            (0, size, "BIOS"),
            (0x1000, 0x1000, "FMAP"),
            (0x2000, 0x2000, "RO_VPD"),
            (0x8000, 0x8000, "COREBOOT"),
            (0x1_0000, 0x3_0000, "UNUSED"),
        ],
    );
    dump[0x1000..0x1000 + table.len()].copy_from_slice(&table);
    dump[0x2000..0x2100].copy_from_slice(&noise(0x100, 5));
    dump[0x8000..0x8000 + release.len()].copy_from_slice(&release);
    let tree = dtb(
        1,
        1,
        &[("art", &[0x2000, 0x1000]), ("firmware", &[0x8000, 0x8000])],
    );
    dump[0xe000..0xe000 + tree.len()].copy_from_slice(&tree);
    (dump, release)
}

/// Every table read, then the dump checked with what it says of itself: nothing masked,
/// every byte once, never a panic, never long.
fn check_own(dump: &[u8], release: &[u8]) -> (OwnLayout, crate::dump::DumpReport) {
    let dir = tempfile::tempdir().unwrap();
    let (d, r) = (dir.path().join("dump.bin"), dir.path().join("fw.img"));
    std::fs::write(&d, dump).unwrap();
    std::fs::write(&r, release).unwrap();
    let start = Instant::now();
    let layout = read_layout(&File::open(&d).unwrap(), dump.len() as u64, &[]).unwrap();
    well_formed(&layout, dump.len() as u64);
    let opts = Options {
        layout: layout.flash(),
        layout_source: layout.source(),
        ..Options::default()
    };
    let releases = [Release {
        name: "fw.img".into(),
        path: r,
        vouched: Verdict::Identical,
    }];
    let report = check_dump(&d, "dump.bin", &releases, &opts).unwrap();
    assert!(start.elapsed() < Duration::from_secs(10), "too long");
    assert_eq!(report.coverage.masked, 0, "a dump's own word masked bytes");
    assert_eq!(report.coverage.total(), dump.len() as u64);
    (layout, report)
}

#[test]
fn every_table_at_once_and_nothing_masked() {
    let (dump, release) = hostile_base();
    let (layout, report) = check_own(&dump, &release);
    let formats: Vec<TableFormat> = layout.tables.iter().map(|t| t.format).collect();
    assert_eq!(
        formats,
        [TableFormat::Fmap, TableFormat::Ifd, TableFormat::DeviceTree]
    );
    assert_eq!(report.verdict, Verdict::Identical, "{:#?}", report.spans);
    // The descriptor's `gbe` and the device tree's `art` are the same span inside the FMAP's
    // `RO_VPD`: the innermost holds the data (of a tie, the table read first), device data
    // all three, masked none.
    let art = report.spans.iter().find(|s| s.offset == 0x2000).unwrap();
    assert_eq!(art.name.as_deref(), Some("gbe"));
    assert_eq!(art.region_kind, Some(RegionKind::DeviceData));
    assert_eq!(art.status, Status::Unexplained);
    assert_eq!(
        art.coverage.unexplained, 0x200,
        "one 512-byte block of data"
    );
    assert!(art
        .source
        .as_deref()
        .unwrap()
        .starts_with("Intel flash descriptor, region gbe"));
    let notes = placed_in(&report, &layout);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`fw.img` lies in the dump's own area")),
        "{notes:?}"
    );
}

#[test]
fn declared_and_own_disagree_in_one_line_each() {
    let (dump, _) = hostile_base();
    let layout = own(&dump, &[]);
    let declared: FlashLayout = toml::from_str(
        "[[region]]\nname = \"boot\"\noffset = 0x8000\nsize = 0x8000\nkind = \"bootloader\"\n",
    )
    .unwrap();
    let notes = disagreements(&declared, &layout);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with("the layout's region `boot` (bootloader) and the dump's FMAP at 0x1000, area COREBOOT (release) disagree at 0x8000-0x10000"),
        "{notes:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Hostile tables: bytes flipped, words made huge, the dump cut short — bounded,
    /// reported, never a panic, and never a masked byte.
    #[test]
    fn mutated_tables_never_mask_or_panic(m in crate::firmware::mutate::mutations()) {
        let (dump, release) = hostile_base();
        // Mutations aimed at the tables: the descriptor, the FMAP, the device tree.
        let mut mutated = dump.clone();
        for (at, len) in [(0usize, 0x100usize), (0x1000, 0x200), (0xe000, 0x200)] {
            let piece = crate::firmware::mutate::apply(&dump[at..at + len], &m);
            mutated[at..at + piece.len()].copy_from_slice(&piece);
        }
        let cut = crate::firmware::mutate::apply(&dump, &m);
        check_own(&mutated, &release);
        if !cut.is_empty() {
            check_own(&cut, &release);
        }
    }
}
