//! The verifier's own settings: who it is, and how its attestations are written.
//!
//! One TOML file, found at `$REPROVE_CONFIG` when that is set (the file must then exist), else
//! at `$XDG_CONFIG_HOME/reprove/config.toml`, else `$HOME/.config/reprove/config.toml` (a
//! missing default file is no error: nothing is configured). Parsing is as strict as the
//! recipe's: an unknown key or a wrong type is an error naming the file, the line and the key.
//!
//! ```toml
//! [verifier]
//! id = "https://lab.example/reprove"   # the VSA's `verifier.id`: who ran the verification
//! name = "Example Lab"                 # a display name for it
//!
//! [attestation]
//! redact = true                        # as `verify --redact`
//! policy-uri = "https://lab.example/policies/acme"   # the VSA's `policy.uri`
//! ```
//!
//! Invariants: the file is read with a bound ([`MAX_BYTES`]); a verifier id and a policy URI
//! are absolute URIs (a scheme, a colon, then no space or control character) wherever they come
//! from (file, command line, environment), checked by [`check_uri`].

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The environment variable naming the config file.
pub(crate) const CONFIG_ENV: &str = "REPROVE_CONFIG";
/// A config file larger than this is refused: it is a few lines.
pub(crate) const MAX_BYTES: u64 = 64 * 1024;

/// The settings, all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    #[serde(default)]
    pub(crate) verifier: VerifierConfig,
    #[serde(default)]
    pub(crate) attestation: AttestationConfig,
}

/// `[verifier]`: the organisation or lab that runs the verification.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifierConfig {
    pub(crate) id: Option<String>,
    pub(crate) name: Option<String>,
}

/// `[attestation]`: defaults for the attestations written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct AttestationConfig {
    #[serde(default)]
    pub(crate) redact: bool,
    pub(crate) policy_uri: Option<String>,
}

/// Why the config could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("failed to read the config `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the config `{path}` is larger than {MAX_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("the config `{path}` is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("invalid config `{path}`, line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("invalid config `{path}`: `{key}` {reason}: `{value}`")]
    Invalid {
        path: PathBuf,
        key: &'static str,
        reason: String,
        value: String,
    },
}

/// Where the config is looked for, and whether it must exist there.
pub(crate) fn config_path() -> Option<(PathBuf, bool)> {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(path) = set(CONFIG_ENV) {
        return Some((PathBuf::from(path), true));
    }
    let base = set("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| set("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some((base.join("reprove").join("config.toml"), false))
}

impl Config {
    /// The config at [`config_path`], or the empty one when there is none.
    pub(crate) fn load_default() -> Result<Config, Error> {
        match config_path() {
            Some((path, required)) => match Config::load(&path) {
                Err(Error::Read { source, .. })
                    if !required && source.kind() == std::io::ErrorKind::NotFound =>
                {
                    Ok(Config::default())
                }
                other => other,
            },
            None => Ok(Config::default()),
        }
    }

    /// Read and check the config at `path`.
    pub(crate) fn load(path: &Path) -> Result<Config, Error> {
        use std::io::Read as _;
        let read = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .map_err(read)?
            .take(MAX_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(read)?;
        if bytes.len() as u64 > MAX_BYTES {
            return Err(Error::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| Error::NotText {
            path: path.to_path_buf(),
        })?;
        Config::parse(&text, path)
    }

    /// Parse config text; `path` names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Config, Error> {
        let config: Config = toml::from_str(text).map_err(|e: toml::de::Error| {
            let line = e
                .span()
                .map_or(1, |span| crate::recipe::line_column(text, span.start).0);
            Error::Parse {
                path: path.to_path_buf(),
                line,
                message: e.message().to_owned(),
            }
        })?;
        let invalid = |key, value: &str, reason: String| Error::Invalid {
            path: path.to_path_buf(),
            key,
            reason,
            value: value.to_owned(),
        };
        if let Some(id) = &config.verifier.id {
            check_uri(id).map_err(|r| invalid("verifier.id", id, r))?;
        }
        if let Some(name) = &config.verifier.name {
            check_name(name).map_err(|r| invalid("verifier.name", name, r))?;
        }
        if let Some(uri) = &config.attestation.policy_uri {
            check_uri(uri).map_err(|r| invalid("attestation.policy-uri", uri, r))?;
        }
        Ok(config)
    }
}

/// `Err(reason)` unless `text` is an absolute URI: a scheme (a letter, then letters, digits,
/// `+`, `-` or `.`), a colon, and something after it, with no space or control character.
pub(crate) fn check_uri(text: &str) -> Result<(), String> {
    let Some((scheme, rest)) = text.split_once(':') else {
        return Err("is not an absolute URI (no `scheme:`)".to_owned());
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok {
        return Err("is not an absolute URI (a bad scheme)".to_owned());
    }
    if rest.is_empty() {
        return Err("is not an absolute URI (nothing after the scheme)".to_owned());
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("holds a space or a control character".to_owned());
    }
    if text.len() > 2048 {
        return Err("is longer than 2048 bytes".to_owned());
    }
    Ok(())
}

/// `Err(reason)` unless `text` is a display name: one line, not empty, no control character.
pub(crate) fn check_name(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    if text.chars().any(char::is_control) {
        return Err("holds a control character".to_owned());
    }
    if text.len() > 256 {
        return Err("is longer than 256 bytes".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_parses_and_bad_ones_name_file_line_and_key() {
        let path = Path::new("config.toml");
        let text = "[verifier]\nid = \"https://lab.example/reprove\"\nname = \"Example Lab\"\n\n\
                    [attestation]\nredact = true\npolicy-uri = \"urn:lab:policy:acme\"\n";
        let config = Config::parse(text, path).unwrap();
        assert_eq!(
            config.verifier.id.as_deref(),
            Some("https://lab.example/reprove")
        );
        assert_eq!(config.verifier.name.as_deref(), Some("Example Lab"));
        assert!(config.attestation.redact);
        assert_eq!(Config::parse("", path).unwrap(), Config::default());

        for (text, expected) in [
            (
                "[verifier]\nid = \"lab\"\n",
                "invalid config `config.toml`: `verifier.id` is not an absolute URI (no `scheme:`): `lab`",
            ),
            (
                "[verifier]\nid = \"https://a b\"\n",
                "`verifier.id` holds a space or a control character",
            ),
            (
                "[verifier]\nname = \"a\\u001b[31m\"\n",
                "`verifier.name` holds a control character",
            ),
            ("[verifier]\n\nkey = 1\n", "config.toml`, line 3: unknown field `key`"),
            ("[attestation]\nredact = \"yes\"\n", "line 2: invalid type"),
            (
                "[attestation]\npolicy-uri = \"1x:y\"\n",
                "`attestation.policy-uri` is not an absolute URI (a bad scheme)",
            ),
        ] {
            let err = Config::parse(text, path).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected}: {err}");
        }
    }
}
