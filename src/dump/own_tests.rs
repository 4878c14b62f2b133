//! The dump's own layout on dumps made here: tables found, kinds, flattening, bounds.

use super::*;

#[test]
fn names_match_their_rows() {
    assert!(matches("UNUSED|RW_UNUSED|*_UNUSED", "RW_UNUSED"));
    assert!(matches("UNUSED|RW_UNUSED|*_UNUSED", "ro_unused"));
    assert!(matches("COREBOOT|FW_MAIN_*", "FW_MAIN_B"));
    assert!(matches("*VPD*", "RO_VPD"));
    assert!(!matches("COREBOOT|FW_MAIN_*", "RW_FWID_A"));
    assert!(!matches("art", "partition"));
}
