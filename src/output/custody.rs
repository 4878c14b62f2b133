//! How custody reads for people: the coverage line every verification ends with, pinned blobs
//! and provenance records. Shared by `verify` (text and HTML) and `attest verify`; what comes
//! from an attestation or a provenance file is untrusted text and is escaped here.

use super::sanitize::sanitize;
use crate::coverage::Coverage;

/// One line: every class as a share of the total, in percent, and in bytes, in the order
/// [`Coverage::classes`] gives (`coverage of 4243 bytes: 97.6% reproduced (4141 bytes), …`).
pub(crate) fn coverage_text(c: &Coverage) -> String {
    let shares: Vec<String> = c
        .classes()
        .iter()
        .map(|(name, n)| format!("{} {name} ({})", c.percent_text(*n), bytes(*n)))
        .collect();
    format!("coverage of {}: {}", bytes(c.total()), shares.join(", "))
}

fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

/// A provenance record's text for one line: escaped, its line breaks shown as ` / `.
pub(crate) fn provenance_text(text: &str) -> String {
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(sanitize)
        .collect();
    lines.join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_reads_in_percent_and_bytes_and_provenance_on_one_line() {
        let c = Coverage {
            reproduced: 3,
            pinned: 1,
            ..Coverage::default()
        };
        assert_eq!(
            coverage_text(&c),
            "coverage of 4 bytes: 75.0% reproduced (3 bytes), 25.0% pinned (1 byte), 0.0% \
             masked (0 bytes), 0.0% erased (0 bytes), 0.0% unexplained (0 bytes)"
        );
        assert_eq!(
            provenance_text("flashrom 1.3\n\n serial SN-42\u{1b}[31m\n"),
            "flashrom 1.3 / serial SN-42\\u{1b}[31m"
        );
    }
}
