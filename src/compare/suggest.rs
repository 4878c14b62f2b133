//! Allowances a report suggests, never applies.
//!
//! One shape only, and only exactly it: the right side (the shipped file) is the left side
//! (the rebuilt file) followed by more bytes — a signature or a vendor block appended after
//! the build. Then the report shows the `[[allow]] trailer = N` that would declare it, with a
//! reason for a person to fill in. The verdict stays what the comparison found (`different`):
//! declaring bytes harmless is the recipe author's decision, written down with a reason, not
//! the tool's guess. Anything else about the pair (another differing leaf, a byte of the common
//! part changed, metadata, an allowance already applied) and there is no suggestion.

use serde::Serialize;

use super::{Change, Comparison, Verdict};

/// An allowance that would declare a comparison's one difference, not applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Suggestion {
    /// The bytes the right side has past the end of the left side.
    pub trailer: u64,
    /// The allowance as a recipe writes it, `reason` left for a person to fill in.
    pub toml: String,
}

/// What the reason of a suggested allowance says until someone writes the real one.
pub(crate) const REASON_PLACEHOLDER: &str = "…";

/// The trailer allowance that would declare `c`, when the right side is exactly the left side
/// followed by more bytes; `artifact` names it in the recipe (a name in the shipped set).
pub(crate) fn suggest_trailer(c: &Comparison, artifact: Option<&str>) -> Option<Suggestion> {
    if c.verdict != Verdict::Different {
        return None;
    }
    let [leaf] = c.leaves.as_slice() else {
        return None;
    };
    if leaf.change != Change::Changed
        || leaf.verdict != Verdict::Different
        || !leaf.metadata.is_empty()
        || !leaf.allowances.is_empty()
    {
        return None;
    }
    let content = leaf.content.as_ref()?;
    let extra = content.right_size.checked_sub(content.left_size)?;
    let [range] = content.ranges.as_slice() else {
        return None;
    };
    let exactly_appended = extra > 0
        && content.range_count == 1
        && content.differing_bytes == extra
        && range.offset == content.left_size
        && range.len == extra;
    if !exactly_appended {
        return None;
    }
    let mut toml = String::from("[[allow]]\n");
    if let Some(name) = artifact {
        // Quoted as TOML quotes it: a name from the shipped set is untrusted text.
        toml.push_str(&format!(
            "artifact = {}\n",
            toml::Value::String(name.to_owned())
        ));
    }
    toml.push_str(&format!(
        "trailer = {extra}\nreason = \"{REASON_PLACEHOLDER}\"\n"
    ));
    Some(Suggestion {
        trailer: extra,
        toml,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{diff_paths, Allowance, Options, Rule};

    fn compare(left: &[u8], right: &[u8], allowances: Vec<Allowance>) -> Comparison {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
        std::fs::write(&a, left).unwrap();
        std::fs::write(&b, right).unwrap();
        let opts = Options {
            allowances,
            ..Options::default()
        };
        diff_paths(&a, &b, &opts).unwrap()
    }

    #[test]
    fn only_exactly_appended_bytes_get_a_suggestion() {
        let base: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut signed = base.clone();
        signed.extend_from_slice(&[0xa5; 64]);
        let s = suggest_trailer(&compare(&base, &signed, Vec::new()), Some("fw \"x\".img"))
            .expect("a suggestion");
        assert_eq!(s.trailer, 64);
        assert_eq!(
            s.toml,
            "[[allow]]\nartifact = 'fw \"x\".img'\ntrailer = 64\nreason = \"…\"\n"
        );
        // The suggestion is a recipe's allowance as written.
        let parsed: toml::Value = toml::from_str(&s.toml).unwrap();
        assert_eq!(parsed["allow"][0]["trailer"].as_integer(), Some(64));
        assert_eq!(
            parsed["allow"][0]["artifact"].as_str(),
            Some("fw \"x\".img")
        );

        // A byte of the common part changed too, the shipped file shorter, a changed middle,
        // or the trailer already allowed: no suggestion.
        let mut also_changed = signed.clone();
        also_changed[10] ^= 1;
        let mut changed = base.clone();
        changed[100] ^= 1;
        let shorter = base[..4000].to_vec();
        for (left, right) in [(&base, &also_changed), (&base, &changed), (&base, &shorter)] {
            assert!(suggest_trailer(&compare(left, right, Vec::new()), None).is_none());
        }
        let allowed = vec![Allowance {
            artifact: None,
            rule: Rule::Trailer(64),
            reason: "signature".to_owned(),
        }];
        assert!(suggest_trailer(&compare(&base, &signed, allowed), None).is_none());
    }
}
