//! Coverage: where every byte of what was checked stands.
//!
//! A verification (the shipped set) and a dump check (a flash image read out of a device) both
//! end with the account a procurement file needs: how many bytes were reproduced from the
//! escrow, how many are pinned blobs whose digests matched, how many are masked device data,
//! how many are erased flash holding only its fill, and how many are none of these. The five
//! classes are disjoint and together are every byte checked: whoever fills a `Coverage` adds
//! each byte to exactly one class, and `unexplained` is where a byte goes when nothing else
//! holds for it (a differing byte, an unknown region, a blob whose digest does not match,
//! anything but the fill in an erased region).

use serde::{Deserialize, Serialize};

/// Bytes by what vouches for them; see the module docs for the classes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// Bytes equal to bytes rebuilt from the escrow.
    pub reproduced: u64,
    /// Bytes of pinned blobs whose digest matched the recipe's pin.
    pub pinned: u64,
    /// Bytes of device-data regions, masked with a reason.
    pub masked: u64,
    /// Bytes of erased regions holding only their fill.
    pub erased: u64,
    /// Every other byte.
    pub unexplained: u64,
}

impl Coverage {
    /// Every byte counted, in all five classes.
    pub fn total(&self) -> u64 {
        self.reproduced
            .saturating_add(self.pinned)
            .saturating_add(self.masked)
            .saturating_add(self.erased)
            .saturating_add(self.unexplained)
    }

    /// Adds `other`'s bytes to these, class by class.
    pub fn add(&mut self, other: &Coverage) {
        self.reproduced = self.reproduced.saturating_add(other.reproduced);
        self.pinned = self.pinned.saturating_add(other.pinned);
        self.masked = self.masked.saturating_add(other.masked);
        self.erased = self.erased.saturating_add(other.erased);
        self.unexplained = self.unexplained.saturating_add(other.unexplained);
    }

    /// `part` as a share of the total, in percent (0 when nothing was counted).
    #[allow(clippy::cast_precision_loss)]
    pub fn percent(&self, part: u64) -> f64 {
        match self.total() {
            0 => 0.0,
            total => part as f64 * 100.0 / total as f64,
        }
    }

    /// The share of `part` as text: one decimal, but a non-zero share never reads `0.0%` (two
    /// significant digits below 0.1%: `0.027%`) nor a partial one `100.0%`.
    pub fn percent_text(&self, part: u64) -> String {
        let p = self.percent(part);
        if part == 0 || part >= self.total() {
            return format!("{p:.1}%");
        }
        if p >= 0.1 {
            let text = format!("{p:.1}%");
            return if text == "100.0%" {
                "99.9%".to_owned()
            } else {
                text
            };
        }
        // Two significant digits: 0.027, 0.00038.
        #[allow(clippy::cast_possible_truncation)]
        let decimals = (1 - p.log10().floor() as i32).clamp(2, 20);
        let decimals = usize::try_from(decimals).unwrap_or(2);
        format!("{p:.decimals$}%")
    }

    /// The classes with their names, in the order every output shows them.
    pub fn classes(&self) -> [(&'static str, u64); 5] {
        [
            ("reproduced", self.reproduced),
            ("pinned", self.pinned),
            ("masked", self.masked),
            ("erased", self.erased),
            ("unexplained", self.unexplained),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::Coverage;

    #[test]
    fn classes_add_up_to_the_total() {
        let mut c = Coverage {
            reproduced: 3,
            pinned: 1,
            ..Coverage::default()
        };
        c.add(&Coverage {
            unexplained: 4,
            ..Coverage::default()
        });
        assert_eq!(c.total(), 8);
        assert!((c.percent(c.unexplained) - 50.0).abs() < f64::EPSILON);
        assert_eq!(c.classes().iter().map(|(_, n)| n).sum::<u64>(), c.total());
        assert!(Coverage::default().percent(0).abs() < f64::EPSILON);
    }
}
