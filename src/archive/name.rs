//! Member names: what path below the root a raw archive name stands for, and when two names
//! are one path.
//!
//! A name is split on `/`; empty and `.` components are dropped, so `./a`, `a/`, `a//b` and
//! `a/./b` are the paths `a`, `a`, `a/b` and `a/b`. Two members whose names normalise to the
//! same path are duplicates, whatever their kinds (a file `a` and a directory `a/` included).
//! [`normalize`] is the strict form used when writing to disk: it refuses an absolute name,
//! a `..` component and control characters. [`key`] is the lenient form used when members
//! are only compared, never written: a leading `/` is dropped and `..` kept as a plain
//! component, so any name has a key and two names have the same key exactly when they are
//! one path. Both are total (they never panic) and stable under repetition.

use std::fmt::Write as _;

/// Why a member is refused. Names and targets are escaped for printing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Reason {
    #[error("its path is absolute")]
    Absolute,
    #[error("it climbs out of the tree with `..`")]
    ParentDir,
    #[error("its name or link target holds a control character")]
    ControlChar,
    #[error("its name or link target is empty")]
    NoName,
    #[error("it links to `{0}`, outside the tree")]
    LinkOutside(String),
    #[error("its link target passes through too many symlinks")]
    LinkLoop,
    #[error("it is a hard link to `{0}`, which is not a regular file extracted before it")]
    HardLinkTarget(String),
    #[error("it would be written through the symlink `{0}`")]
    ThroughSymlink(String),
    #[error("it would be written below the file `{0}`")]
    UnderFile(String),
    #[error("an earlier entry has the same path")]
    Duplicate,
    #[error("it is a {0}, not a file, a directory or a symlink")]
    Special(&'static str),
    #[error("it is encrypted")]
    Encrypted,
}

/// `name` as a path below the root: `/`-separated, without empty or `.` components. Refuses
/// control characters, absolute paths and `..`. The root itself normalises to empty.
pub(crate) fn normalize(name: &[u8]) -> Result<Vec<u8>, Reason> {
    if has_control(name) {
        return Err(Reason::ControlChar);
    }
    if name.starts_with(b"/") {
        return Err(Reason::Absolute);
    }
    if components(name).any(|part| part == b"..") {
        return Err(Reason::ParentDir);
    }
    Ok(key(name))
}

/// `name` as a comparison key: `/`-separated, without empty or `.` components (so without a
/// leading or trailing `/`). Never fails; `..` stays a component.
pub(crate) fn key(name: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len());
    for part in components(name) {
        if !key.is_empty() {
            key.push(b'/');
        }
        key.extend_from_slice(part);
    }
    key
}

fn components(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    name.split(|&b| b == b'/')
        .filter(|part| !part.is_empty() && *part != b".")
}

pub(crate) fn has_control(name: &[u8]) -> bool {
    name.iter().any(|&b| b < 0x20 || b == 0x7f)
}

/// An untrusted name made safe to print: control and invisible characters escaped, bytes that
/// are not UTF-8 as `\xNN`.
pub(crate) fn shown(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            if matches!(c, '\\' | '\'' | '"') {
                out.push(c);
            } else {
                out.extend(c.escape_debug());
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_strips_dots_and_refuses_escapes() {
        assert_eq!(normalize(b"./a//b/./c/").unwrap(), b"a/b/c");
        assert_eq!(normalize(b"./").unwrap(), b"");
        assert_eq!(normalize(b"/etc/passwd"), Err(Reason::Absolute));
        assert_eq!(normalize(b"a/../../b"), Err(Reason::ParentDir));
        assert_eq!(normalize(b"a/.."), Err(Reason::ParentDir));
        assert_eq!(normalize(b"a\nb"), Err(Reason::ControlChar));
        assert_eq!(normalize(b"caf\xe9").unwrap(), b"caf\xe9");
        assert_eq!(normalize(b"...").unwrap(), b"...");
    }

    #[test]
    fn names_that_are_one_path_have_one_key() {
        for (a, b) in [
            ("a/./b", "a/b"),
            ("a//b", "a/b"),
            ("./a", "a"),
            ("a/", "a"),
            ("/fw.img", "fw.img"),
            ("./x/.//y/", "x/y"),
        ] {
            assert_eq!(key(a.as_bytes()), key(b.as_bytes()), "{a} vs {b}");
        }
        assert_ne!(key(b"a/../b"), key(b"b"), "`..` is not resolved");
        assert_ne!(key(b"A"), key(b"a"));
    }

    #[test]
    fn shown_escapes_what_misleads() {
        assert_eq!(shown(b"ok/it's.c"), "ok/it's.c");
        assert_eq!(shown(b"a\x1b[31m"), "a\\u{1b}[31m");
        assert_eq!(shown("evil\u{202e}txt".as_bytes()), "evil\\u{202e}txt");
        assert_eq!(shown(b"\xffx"), "\\xffx");
    }

    proptest::proptest! {
        /// Any bytes: no panic; a normalised name is its own key, holds no empty, `.` or `..`
        /// component, and normalising it again changes nothing.
        #[test]
        fn normalising_never_panics_and_is_stable(
            name in proptest::collection::vec(
                proptest::sample::select(vec![b'a', b'/', b'.', b'\n', 0xff, b'b']),
                0..40,
            ),
        ) {
            let k = key(&name);
            proptest::prop_assert_eq!(key(&k), k.clone());
            proptest::prop_assert!(!k.starts_with(b"/") && !k.ends_with(b"/"));
            let _ = shown(&name);
            if let Ok(n) = normalize(&name) {
                proptest::prop_assert_eq!(&n, &k);
                proptest::prop_assert_eq!(normalize(&n), Ok(n.clone()));
                proptest::prop_assert!(n.split(|&b| b == b'/').all(|p| n.is_empty()
                    || !(p.is_empty() || p == b"." || p == b"..")));
            }
        }

        /// Inserting `./` or doubling a `/` never changes the key.
        #[test]
        fn dot_and_double_slash_are_ignored(
            parts in proptest::collection::vec("[a-z.]{1,4}", 1..6),
            noise in proptest::collection::vec(0usize..3, 6),
        ) {
            let plain = parts.join("/");
            let noisy: Vec<String> = parts
                .iter()
                .zip(&noise)
                .map(|(p, n)| match n { 0 => p.clone(), 1 => format!("./{p}"), _ => format!("{p}/") })
                .collect();
            let noisy = noisy.join("/");
            proptest::prop_assert_eq!(key(plain.as_bytes()), key(noisy.as_bytes()));
        }
    }
}
