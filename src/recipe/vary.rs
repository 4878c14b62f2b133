//! `[verify] vary`: what the second rebuild of `verify` varies of what must not matter.
//!
//! Each name is one variation ([`Vary`]); the recipe lists those it wants, or leaves the key
//! out for every one that works on this machine (see [`crate::build::Variation`]). Names are
//! parsed as strictly as the rest of the recipe: an unknown name is an error naming the line
//! and the valid names, and a name listed twice is refused.

use serde::{Deserialize, Serialize};

/// One thing the second rebuild can vary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vary {
    /// Another, deeper folder on the host for the build tree (the sandbox still shows it at
    /// `/build`; with `isolation = "none"` the build sees the other path).
    BuildDir,
    /// Another umask (`077` instead of `022`).
    Umask,
    /// The environment handed over in reverse order.
    EnvOrder,
    /// Another wall clock (libfaketime: stopped 400 days after the verification started).
    Clock,
}

impl Vary {
    /// Every variation, in the order reports list them.
    pub const ALL: [Vary; 4] = [Vary::BuildDir, Vary::Umask, Vary::EnvOrder, Vary::Clock];

    /// The name a recipe writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Vary::BuildDir => "build-dir",
            Vary::Umask => "umask",
            Vary::EnvOrder => "env-order",
            Vary::Clock => "clock",
        }
    }
}

impl std::fmt::Display for Vary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[verify]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// What the second rebuild varies; `None`: every variation that works here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vary: Option<Vec<Vary>>,
}

impl VerifySpec {
    /// Whether `what` may be varied: listed, or no list given.
    pub fn allows(&self, what: Vary) -> bool {
        self.vary.as_ref().is_none_or(|v| v.contains(&what))
    }

    /// Whether the recipe names `what` itself (so that it must work, not be skipped).
    pub fn demands(&self, what: Vary) -> bool {
        self.vary.as_ref().is_some_and(|v| v.contains(&what))
    }
}
