//! What a failed rebuild leaves a person to read: the last lines of its log, the whole log
//! kept where it can be opened after the command exits, and, for an artifact the build did not
//! make, the files it did make that look like it.
//!
//! Invariants:
//!
//! - The kept log is a copy of exactly the bytes whose digest the rebuild records: it is read
//!   from one handle opened without following a link (the build could have replaced its log
//!   with `isolation = "none"`), hashed while it is copied, and named by that digest,
//!   `logs/sha256-HEX.log` under the cache folder ([`crate::sandbox::rootfs::cache_root`]).
//!   It appears whole or not at all ([`crate::atomic`]); a log already kept under its digest
//!   is the same bytes and is left as it is. With a work folder the user named, the log stays
//!   there and nothing is copied.
//! - The tail is read from at most [`TAIL_BYTES`] at the end of the log, lines cut at
//!   [`LINE_CHARS`] characters: a log of gigabytes, or one long line, costs no more. It is text
//!   for people, escaped where it is shown; the log's digest stays the binding.
//! - Similar files are found by name only, beneath the build tree ([`crate::beneath::Tree::
//!   list_files`]): no link is followed, at most [`LIST_ENTRIES`] entries are looked at and no
//!   deeper than [`LIST_DEPTH`] folders.

use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::hash::Checksum;

/// Lines of the log a failure shows unless told otherwise.
pub(crate) const DEFAULT_TAIL_LINES: usize = 20;
/// The most of a log's end read for its tail.
pub(crate) const TAIL_BYTES: u64 = 64 * 1024;
/// A tail line longer than this is cut (and marked with `…`).
pub(crate) const LINE_CHARS: usize = 400;
/// The most similar files named for a missing artifact.
pub(crate) const MAX_SIMILAR: usize = 3;
/// Entries of the build tree looked at when searching for similar files.
pub(crate) const LIST_ENTRIES: usize = 100_000;
/// Folders below the build tree's root entered when searching for similar files.
pub(crate) const LIST_DEPTH: usize = 32;

/// A failed rebuild's log, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureLog {
    /// Its last lines (as many as asked for; none when 0 were).
    pub tail: Vec<String>,
    /// Where the whole log is, or why it could not be kept.
    pub kept: Result<PathBuf, String>,
}

/// The last `lines` lines of the log read from `file` (from its start to its end as it is
/// now), each cut at [`LINE_CHARS`] characters. A final line without a newline counts.
pub(crate) fn tail_lines(file: &mut File, lines: usize) -> std::io::Result<Vec<String>> {
    if lines == 0 {
        return Ok(Vec::new());
    }
    let size = file.metadata()?.len();
    let start = size.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    // Read from the middle of the log: the first line may be the end of a longer one.
    if start > 0 && all.len() > 1 {
        all.remove(0);
    }
    let from = all.len().saturating_sub(lines);
    Ok(all[from..]
        .iter()
        .map(|line| {
            let line = line.trim_end();
            if line.chars().count() > LINE_CHARS {
                let cut: String = line.chars().take(LINE_CHARS).collect();
                format!("{cut}…")
            } else {
                line.to_owned()
            }
        })
        .collect())
}

/// Copy the log at `log` (reprove's own file beside the build tree, opened without following
/// a link) into `dir`, named by its sha256: `dir/sha256-HEX.log`. Returns that path and a
/// handle on the copy to read the tail from.
pub(crate) fn keep_log(log: &Path, dir: &Path) -> std::io::Result<(PathBuf, File)> {
    use sha2::Digest as _;
    let mut source = crate::beneath::open_regular_nofollow(log).map_err(std::io::Error::other)?;
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".reprove-")
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(
            crate::atomic::REPORT_MODE,
        ))
        .tempfile_in(dir)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = source.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])?;
    }
    tmp.as_file().sync_all()?;
    let digest = Checksum::sha256(hasher.finalize().into());
    let path = dir.join(format!("sha256-{}.log", digest.hex()));
    crate::interrupt::checkpoint("keep-log")?;
    match tmp.persist_noclobber(&path) {
        Ok(file) => Ok((path, file)),
        // The same digest: the same bytes, kept by an earlier run.
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let file =
                crate::beneath::open_regular_nofollow(&path).map_err(std::io::Error::other)?;
            Ok((path, file))
        }
        Err(e) => Err(e.error),
    }
}

/// Where failed builds' logs are kept when no work folder is named: `logs/` in the cache.
pub(crate) fn logs_dir() -> Option<PathBuf> {
    crate::sandbox::rootfs::cache_root().map(|dir| dir.join("logs"))
}

/// The log of a failed rebuild, for people: kept in `keep_in` (or, with `None`, where it
/// already is: a work folder the user named), and its last `lines` lines.
pub(crate) fn failure_log(log: &Path, keep_in: Option<&Path>, lines: usize) -> FailureLog {
    let kept = match keep_in {
        Some(dir) => keep_log(log, dir)
            .map_err(|e| format!("the log could not be kept in `{}`: {e}", dir.display())),
        None => crate::beneath::open_regular_nofollow(log)
            .map(|file| (log.to_path_buf(), file))
            .map_err(|e| e.to_string()),
    };
    match kept {
        Ok((path, mut file)) => FailureLog {
            tail: tail_lines(&mut file, lines).unwrap_or_default(),
            kept: Ok(path),
        },
        Err(why) => FailureLog {
            // The copy failed, not the log: the tail is still worth reading.
            tail: crate::beneath::open_regular_nofollow(log)
                .ok()
                .and_then(|mut f| tail_lines(&mut f, lines).ok())
                .unwrap_or_default(),
            kept: Err(why),
        },
    }
}

/// How alike `candidate` is to `wanted`: `None` when not alike, else a key (lower is closer).
fn likeness(candidate: &Path, wanted: &Path) -> Option<(u8, usize)> {
    // Names are bounded so that a crafted tree of long names costs nothing quadratic.
    let text = |p: &Path| -> String { p.to_string_lossy().chars().take(256).collect() };
    let distance = strsim::levenshtein(&text(candidate), &text(wanted));
    if candidate.file_name().is_some() && candidate.file_name() == wanted.file_name() {
        return Some((0, distance));
    }
    let wanted_len = text(wanted).chars().count();
    if distance <= (wanted_len / 4).max(2) {
        return Some((1, distance));
    }
    let ext = |p: &Path| p.extension().map(std::ffi::OsStr::to_os_string);
    if ext(wanted).is_some() && ext(candidate) == ext(wanted) {
        return Some((2, distance));
    }
    None
}

/// The files like `wanted` among `files` (a listing made once for several artifacts).
pub(crate) fn rank_similar(files: &[PathBuf], wanted: &Path) -> Vec<PathBuf> {
    let mut ranked: Vec<((u8, usize), &PathBuf)> = files
        .iter()
        .filter(|f| f.as_path() != wanted)
        .filter_map(|f| Some((likeness(f, wanted)?, f)))
        .collect();
    ranked.sort();
    ranked
        .into_iter()
        .take(MAX_SIMILAR)
        .map(|(_, f)| f.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn similar_files_come_best_first_and_few() {
        let files = paths(&[
            "README",
            "build/firmware.img",
            "out/firmware.bin",
            "out/firmwre.img",
            "out/other.img",
            "a.img",
            "b.img",
            "src/main.c",
        ]);
        assert_eq!(
            rank_similar(&files, Path::new("out/firmware.img")),
            paths(&["build/firmware.img", "out/firmwre.img", "out/firmware.bin"])
        );
        assert!(rank_similar(&files, Path::new("nothing-like-it")).is_empty());
    }

    #[test]
    fn the_tail_is_the_last_lines_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mut text = String::new();
        for i in 0..100 {
            text.push_str(&format!("line {i}\n"));
        }
        text.push_str(&"x".repeat(LINE_CHARS + 10));
        std::fs::write(&log, &text).unwrap();
        let mut file = File::open(&log).unwrap();
        let tail = tail_lines(&mut file, 3).unwrap();
        assert_eq!(tail[0], "line 98");
        assert_eq!(tail[1], "line 99");
        assert_eq!(tail[2].chars().count(), LINE_CHARS + 1);
        assert!(tail_lines(&mut file, 0).unwrap().is_empty());

        // A log far longer than what is read: only its end, from a line's start.
        let huge = "y".repeat(usize::try_from(TAIL_BYTES).unwrap() * 2) + "\nlast\n";
        std::fs::write(&log, &huge).unwrap();
        let tail = tail_lines(&mut File::open(&log).unwrap(), 20).unwrap();
        assert_eq!(tail, ["last"]);
    }

    #[test]
    fn a_kept_log_is_named_by_its_digest_and_kept_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        std::fs::write(&log, "make: *** No targets specified\n").unwrap();
        let keep = dir.path().join("logs");
        let (path, _) = keep_log(&log, &keep).unwrap();
        let digest = Checksum::of(
            crate::hash::Algorithm::Sha256,
            b"make: *** No targets specified\n",
        );
        assert_eq!(path, keep.join(format!("sha256-{}.log", digest.hex())));
        assert_eq!(keep_log(&log, &keep).unwrap().0, path);
        assert_eq!(std::fs::read_dir(&keep).unwrap().count(), 1);

        // A link in the log's place is not followed.
        std::fs::remove_file(&log).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &log).unwrap();
        assert!(keep_log(&log, &keep).is_err());
        let failed = failure_log(&log, Some(&keep), 5);
        assert!(failed.kept.is_err() && failed.tail.is_empty(), "{failed:?}");
    }
}
