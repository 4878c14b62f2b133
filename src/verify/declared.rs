//! What a rebuild shows to be wrong with the recipe itself: a declared part
//! (`[[artifact.part]]`) that the rebuilt image does not hold.
//!
//! Such a part is reported where it was checked, as a note starting `error:` (on the
//! artifact when its image matched the shipped file, on the image's leaf when it was
//! compared). The verdicts stand, since they are about bytes; but a recipe that maps an
//! image wrongly is bad input, and the command ends with exit 2 after its report, whatever
//! the verdict (see `docs/diff.md`, "A declared part that does not hold").

use super::Report;

/// The prefix of every note that says a declaration does not hold.
const ERROR: &str = "error: ";

impl Report {
    /// Every declared part that does not hold, once each, without the `error: ` prefix, in
    /// the artifacts' order.
    pub fn recipe_errors(&self) -> Vec<String> {
        let mut errors: Vec<String> = Vec::new();
        for a in &self.artifacts {
            let leaves = a.difference.iter().flat_map(|d| &d.leaves);
            let notes = a.notes.iter().chain(leaves.flat_map(|l| &l.notes));
            for note in notes {
                if let Some(e) = note.strip_prefix(ERROR) {
                    if !errors.iter().any(|seen| seen == e) {
                        errors.push(e.to_owned());
                    }
                }
            }
        }
        errors
    }
}
