//! Snapshots of human output (`insta`, committed under `tests/cli/snapshots/`), with what
//! varies from run to run replaced: the test's temporary folder, digests of what is rebuilt
//! or hashed on this machine, durations, the number of pins a traced lock holds, the bubblewrap
//! version.
//!
//! CI never writes a snapshot: `scripts/test.sh` sets `INSTA_UPDATE=no`, so a mismatch fails
//! (insta also writes nothing when `CI` is set). To accept a change on purpose, run the test
//! with `INSTA_UPDATE=always` and review the diff of the `.snap` file before committing it.

use std::path::Path;

/// Snapshots named by their name alone (`tests/cli/snapshots/NAME.snap`), nothing filtered:
/// for output that is the same everywhere (known-answer digests).
pub fn plain() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

/// Settings whose filters make the output of a run in `root` the same on every machine.
pub fn settings(root: &Path) -> insta::Settings {
    let mut s = plain();
    // A failed build's log is kept in the cache, outside the test's folder, by its digest.
    s.add_filter(
        r"`[^`\s]*/logs/sha256-[0-9a-f]{64}\.log`",
        "`[CACHE]/logs/sha256-[HEX].log`",
    );
    s.add_filter(&regex_escape(&root.display().to_string()), "[ROOT]");
    s.add_filter(r"sha256:[0-9a-f]{64}", "sha256:[SHA256]");
    s.add_filter(r"blake3:[0-9a-f]{64}", "blake3:[BLAKE3]");
    s.add_filter(r"\b\d+\.\d s\b", "[SECS] s");
    // What a traced lock pins depends on the host's toolchain (its libraries, its helpers).
    s.add_filter(r"\b\d+ pins\b", "[N] pins");
    s.add_filter(r"bwrap \d+(\.\d+)*", "bwrap [VERSION]");
    s
}

fn regex_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
