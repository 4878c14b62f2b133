//! What a build reads and runs from outside its tree, learnt by running it under `strace`.
//!
//! `reprove lock` pins every file of the host toolchain a build depends on. [`trace`]
//! runs the build once in the bubblewrap sandbox (host toolchain only: a hermetic root is pinned
//! whole) under `strace -f`, which sees `execve`, `execveat`, every `open*` and the `stat` and
//! `access` family (a file only looked at must be in the lock's view too). Only calls that
//! succeeded count; a looked-at path counts when it is absolute or relative to a dirfd. `strace -y` prints, for each file descriptor an `open*` returns, the path
//! the kernel resolved, so relative names and symlinks need no guessing; `execve` names its
//! program as given, which is absolute unless a build runs `./something` from its own tree.
//! The program's loader (`PT_INTERP`) and a script's `#!` interpreter are started by the
//! kernel without a syscall of their own, so they are read from the executed files. The result
//! is canonical host paths of regular files, outside `/build`, `/proc`, `/dev`, `/tmp`, `/sys`.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use object::elf::{FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use super::bwrap::{Bwrap, TRACE_LOG};
use super::{Error, Invocation, Outcome};

/// `strace` on the host, seen at the same path in the sandbox (which shows the host's `/usr`).
const STRACE: &str = "/usr/bin/strace";

/// Paths the sandbox provides itself: not part of the toolchain.
const EXCLUDED: &[&str] = &["/build", "/proc", "/dev", "/tmp", "/sys"];

/// Run `invocation` in the sandbox under `strace`, its log kept at `trace_file` on the host, and
/// return its outcome and every file it opened or executed from outside the build tree, as
/// canonical host paths, sorted.
pub(crate) fn trace(
    bwrap: &Bwrap,
    invocation: &Invocation<'_>,
    trace_file: &Path,
) -> Result<(Outcome, Vec<PathBuf>), Error> {
    if bwrap.root().is_some() {
        return Err(Error::Unavailable(
            "tracing needs the host toolchain: a hermetic root is pinned whole by its digest"
                .to_owned(),
        ));
    }
    if !Path::new(STRACE).is_file() {
        return Err(Error::Unavailable(format!(
            "`{STRACE}` is not installed; install it: `apt-get install strace`"
        )));
    }
    if invocation.argv.is_empty() {
        return Err(Error::EmptyCommand);
    }
    let log_err = |source| Error::TraceLog {
        path: trace_file.to_path_buf(),
        source,
    };
    File::create(trace_file).map_err(log_err)?;
    let strace = [
        STRACE,
        "-f",
        "-qq",
        "-y",
        "--seccomp-bpf",
        "-e",
        // The stat family too: Python finds a module by `stat`ing its `.py` and then opens
        // only the cached `.pyc`, yet the `.py` must be there. `?`: absent on some arches.
        "trace=execve,execveat,open,openat,openat2,?stat,?lstat,?newfstatat,?statx,?access,\
         ?faccessat,?faccessat2",
        "-o",
        TRACE_LOG,
        "--",
    ];
    let outcome = bwrap.run_with(invocation, Some(trace_file), &strace)?;
    let log = fs::read(trace_file).map_err(log_err)?;
    Ok((outcome, resolve(&parse_log(&log))))
}

/// What the log says was opened or executed, as paths inside the sandbox, in order.
#[derive(Debug, Default, PartialEq, Eq)]
struct Accessed {
    opened: Vec<PathBuf>,
    executed: Vec<PathBuf>,
}

fn parse_log(log: &[u8]) -> Accessed {
    let mut accessed = Accessed::default();
    // A call interrupted by another process's line, by pid, waiting for its `resumed` half.
    let mut pending: HashMap<&[u8], Vec<u8>> = HashMap::new();
    for line in log.split(|&b| b == b'\n') {
        // `PID` padded with spaces (`-f`), then the call.
        let digits = line.iter().take_while(|b| b.is_ascii_digit()).count();
        let (pid, rest) = line.split_at(digits);
        let rest = &rest[rest.iter().take_while(|&&b| b == b' ').count()..];
        let call = if let Some(head) = rest.strip_suffix(b" <unfinished ...>") {
            pending.insert(pid, head.to_vec());
            continue;
        } else if rest.starts_with(b"<... ") {
            let Some(at) = find(rest, b" resumed>") else {
                continue;
            };
            let Some(mut head) = pending.remove(pid) else {
                continue;
            };
            head.extend_from_slice(&rest[at + b" resumed>".len()..]);
            head
        } else {
            rest.to_vec()
        };
        record(&call, &mut accessed);
    }
    accessed
}

/// Note the file of one complete call line, if it succeeded.
fn record(call: &[u8], accessed: &mut Accessed) {
    let Some(open) = call.iter().position(|&b| b == b'(') else {
        return;
    };
    let name = &call[..open];
    // `) = 0`, or, for a call strace split in two, `)             = 0`: the resumed half pads
    // its result into a column.
    let Some(eq) = rfind(call, b" = ") else {
        return;
    };
    if !call[..eq].trim_ascii_end().ends_with(b")") {
        return;
    }
    let result = &call[eq + b" = ".len()..];
    match name {
        b"open" | b"openat" | b"openat2" => {
            // `3</resolved/path>`: the fd and, with `-y`, what it refers to.
            let digits = result.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == 0 {
                return;
            }
            let decorated = &result[digits..];
            if let Some(path) = decorated
                .strip_prefix(b"<")
                .and_then(|p| p.strip_suffix(b">"))
            {
                accessed.opened.push(unescape(path));
            }
        }
        b"stat" | b"lstat" | b"newfstatat" | b"statx" | b"access" | b"faccessat"
        | b"faccessat2"
            if result.starts_with(b"0") =>
        {
            // The path as given: absolute, or relative to a dirfd that `-y` shows as `<dir>`.
            let args = &call[open + 1..];
            let Some(path) = first_string(args) else {
                return;
            };
            let path = unescape(path);
            let quote = args.iter().position(|&b| b == b'"').unwrap_or(0);
            let dir = args[..quote]
                .iter()
                .position(|&b| b == b'<')
                .zip(args[..quote].iter().position(|&b| b == b'>'))
                .filter(|(lt, gt)| lt < gt)
                .map(|(lt, gt)| unescape(&args[lt + 1..gt]));
            if path.is_absolute() {
                accessed.opened.push(path);
            } else if let Some(dir) = dir {
                accessed.opened.push(dir.join(path));
            }
        }
        b"execve" | b"execveat" if result == b"0" => {
            let args = &call[open + 1..];
            // execveat's path is relative to its dirfd, shown `<dir>` by `-y` (where `<`, `>`
            // and `"` are escaped), before the path.
            let lt = args.iter().position(|&b| b == b'<');
            let gt = args.iter().position(|&b| b == b'>');
            let (dir, args) = match (name, lt, gt) {
                (b"execveat", Some(lt), Some(gt)) if lt < gt => {
                    (Some(unescape(&args[lt + 1..gt])), &args[gt..])
                }
                _ => (None, args),
            };
            let Some(path) = first_string(args) else {
                return;
            };
            let path = unescape(path);
            if path.is_absolute() {
                accessed.executed.push(path);
            } else if let Some(dir) = dir {
                accessed.executed.push(dir.join(path));
            }
        }
        _ => {}
    }
}

/// The raw bytes of the first `"…"` in `args`, escapes still in.
fn first_string(args: &[u8]) -> Option<&[u8]> {
    let start = args.iter().position(|&b| b == b'"')? + 1;
    let mut i = start;
    while i < args.len() {
        match args[i] {
            b'\\' => i += 2,
            b'"' => return Some(&args[start..i]),
            _ => i += 1,
        }
    }
    None
}

/// strace's C-style escapes (`\"`, `\\`, `\n`, `\xHH`, `\NNN` octal) back to bytes.
fn unescape(s: &[u8]) -> PathBuf {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' || i + 1 == s.len() {
            out.push(s[i]);
            i += 1;
            continue;
        }
        let c = s[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'f' => out.push(0x0c),
            b'x' => {
                let hex: Vec<u8> = s[i..]
                    .iter()
                    .take(2)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .copied()
                    .collect();
                i += hex.len();
                let text = std::str::from_utf8(&hex).unwrap_or_default();
                out.push(u8::from_str_radix(text, 16).unwrap_or(b'x'));
            }
            b'0'..=b'7' => {
                let mut value = u32::from(c - b'0');
                let mut n = 0;
                while n < 2 && i < s.len() && (b'0'..=b'7').contains(&s[i]) {
                    value = value * 8 + u32::from(s[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push(u8::try_from(value & 0xff).expect("masked to a byte"));
            }
            other => out.push(other),
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Sandbox paths to canonical host paths of regular files outside the excluded trees, with
/// the loaders and interpreters of what was executed.
fn resolve(accessed: &Accessed) -> Vec<PathBuf> {
    let mut files = BTreeSet::new();
    let mut executed: Vec<PathBuf> = accessed.executed.iter().filter_map(|p| host(p)).collect();
    let mut seen = BTreeSet::new();
    while let Some(program) = executed.pop() {
        if !seen.insert(program.clone()) {
            continue;
        }
        if let Some(interpreter) = interpreter(&program).and_then(|p| host(&p)) {
            executed.push(interpreter);
        }
        files.insert(program);
    }
    files.extend(accessed.opened.iter().filter_map(|p| host(p)));
    files.into_iter().collect()
}

/// The canonical host path of a regular file the sandbox shows at `inside`, unless the
/// sandbox provides it itself.
fn host(inside: &Path) -> Option<PathBuf> {
    let excluded = |p: &Path| EXCLUDED.iter().any(|e| p.starts_with(e));
    if !inside.is_absolute() || excluded(inside) {
        return None;
    }
    let canonical = fs::canonicalize(inside).ok()?;
    (!excluded(&canonical) && canonical.is_file()).then_some(canonical)
}

/// The program the kernel starts to run `program`: an ELF file's loader, a script's `#!` line.
fn interpreter(program: &Path) -> Option<PathBuf> {
    // Program headers and the loader's name sit at the start of every ELF file in practice.
    let mut head = Vec::new();
    File::open(program)
        .ok()?
        .take(64 << 10)
        .read_to_end(&mut head)
        .ok()?;
    if let Some(script) = head.strip_prefix(b"#!") {
        let line = script.split(|&b| b == b'\n').next()?;
        let word = line
            .split(u8::is_ascii_whitespace)
            .find(|w| !w.is_empty())?;
        return Some(PathBuf::from(OsStr::from_bytes(word)));
    }
    let raw = elf_interpreter::<FileHeader64<Endianness>>(&head)
        .or_else(|| elf_interpreter::<FileHeader32<Endianness>>(&head))?;
    Some(PathBuf::from(OsStr::from_bytes(raw)))
}

fn elf_interpreter<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<&[u8]> {
    let header = H::parse(data).ok()?;
    let endian = header.endian().ok()?;
    header
        .program_headers(endian, data)
        .ok()?
        .iter()
        .find_map(|ph| ph.interpreter(endian, data).ok().flatten())
        .map(|raw| raw.strip_suffix(b"\0").unwrap_or(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    fn paths(list: &[&str]) -> Vec<PathBuf> {
        list.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn parses_successful_calls_only() {
        let log = br#"100 execve("/usr/bin/make", ["make"], 0x7ffd /* 2 vars */) = 0
100 openat(AT_FDCWD</build>, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC) = 3</etc/ld.so.cache>
100 openat(AT_FDCWD</build>, "/nope", O_RDONLY) = -1 ENOENT (No such file or directory)
100 execve("/usr/local/bin/cc", ["cc"], 0x55 /* 2 vars */) = -1 ENOENT (No such file or directory)
100 openat(AT_FDCWD</build>, "rel.h", O_RDONLY) = 4</build/rel.h>
100 --- SIGCHLD {si_signo=SIGCHLD, si_code=CLD_EXITED} ---
100 +++ exited with 0 +++
"#;
        let accessed = parse_log(log);
        assert_eq!(accessed.executed, paths(&["/usr/bin/make"]));
        assert_eq!(
            accessed.opened,
            paths(&["/etc/ld.so.cache", "/build/rel.h"])
        );
    }

    #[test]
    fn files_found_by_stat_alone_count() {
        // Python: the `.py` is only `stat`ed, the cached `.pyc` beside it is what is opened.
        let log = br#"5 newfstatat(AT_FDCWD</build>, "/usr/lib/python3.11/os.py", {st_mode=S_IFREG|0644, st_size=39504, ...}, 0) = 0
5 statx(3</usr/lib/python3.11>, "abc.py", AT_STATX_SYNC_AS_STAT, STATX_ALL, {stx_mask=STATX_ALL}) = 0
5 newfstatat(AT_FDCWD</build>, "/usr/lib/python3.11/nope.py", 0x7ffc, 0) = -1 ENOENT (No such file or directory)
5 stat("relative.py", {st_mode=S_IFREG|0644, ...}) = 0
5 access("/usr/bin/python3", X_OK) = 0
"#;
        let accessed = parse_log(log);
        assert_eq!(
            accessed.opened,
            paths(&[
                "/usr/lib/python3.11/os.py",
                "/usr/lib/python3.11/abc.py",
                "/usr/bin/python3"
            ])
        );
    }

    #[test]
    fn joins_unfinished_and_resumed_halves() {
        let log =
            br#"7     openat(AT_FDCWD</build>, "/usr/include/stdio.h", O_RDONLY <unfinished ...>
8 openat(AT_FDCWD</build>, "/x", O_RDONLY <unfinished ...>
7     <... openat resumed>) = 3</usr/include/stdio.h>
8 <... openat resumed>) = -1 ENOENT (No such file or directory)
9 execve("/usr/bin/as", ["as"], 0x1 /* 1 var */ <unfinished ...>
9 <... execve resumed>) = 0
12 execve("/usr/bin/md5sum", ["md5sum", "--"], 0x5 /* 9 vars */ <unfinished ...>
12    <... execve resumed>)             = 0
"#;
        let accessed = parse_log(log);
        assert_eq!(accessed.opened, paths(&["/usr/include/stdio.h"]));
        assert_eq!(
            accessed.executed,
            paths(&["/usr/bin/as", "/usr/bin/md5sum"])
        );
    }

    #[test]
    fn unescapes_paths() {
        let log =
            br#"5 openat(AT_FDCWD</b>, "x", O_RDONLY) = 3</opt/we\74i\76rd \"q\" \\ \303\251\n>
5 execveat(3</opt/b\"in>, "tool\x21", ["t"], 0x1 /* 0 vars */, 0) = 0
5 execve("./local", ["./local"], 0x1 /* 0 vars */) = 0
"#;
        let accessed = parse_log(log);
        let expected = PathBuf::from(OsStr::from_bytes(b"/opt/we<i>rd \"q\" \\ \xc3\xa9\n"));
        assert_eq!(accessed.opened, [expected]);
        // A relative execve names a file in the build's working directory: not resolvable.
        assert_eq!(accessed.executed, paths(&["/opt/b\"in/tool!"]));
    }

    #[test]
    fn traces_a_gcc_build() {
        let bwrap = Bwrap::detect(None).expect("needs bubblewrap: `apt-get install bubblewrap`");
        let build = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let source = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n";
        fs::write(build.path().join("hello.c"), source).unwrap();
        fs::write(
            build.path().join("Makefile"),
            "hello: hello.c\n\tgcc -o $@ $<\n",
        )
        .unwrap();
        let argv = ["make".to_owned()];
        let env = BTreeMap::from([("PATH".to_owned(), "/usr/bin:/bin".to_owned())]);
        let log = logs.path().join("log");
        let inv = Invocation {
            argv: &argv,
            env: &env,
            env_reversed: false,
            build_dir: build.path(),
            workdir: None,
            log: &log,
            timeout: Duration::from_secs(120),
            umask: 0o022,
            limits: crate::sandbox::limits::Limits::default(),
        };
        let (outcome, files) = trace(&bwrap, &inv, &logs.path().join("strace")).unwrap();
        assert!(
            outcome.is_success(),
            "{}",
            fs::read_to_string(&log).unwrap()
        );
        assert!(build.path().join("hello").is_file());
        let has = |pred: &dyn Fn(&Path) -> bool| files.iter().any(|f| pred(f));
        assert!(has(&|f| f.ends_with("cc1")), "{files:#?}");
        assert!(
            has(&|f| f == Path::new("/usr/include/stdio.h")),
            "{files:#?}"
        );
        // `Scrt1.o` where gcc makes PIEs by default, `crt1.o` elsewhere.
        let crt1 = |f: &Path| f.to_string_lossy().ends_with("crt1.o");
        assert!(has(&|f| crt1(f)), "{files:#?}");
        assert!(has(&|f| f.ends_with("make")), "{files:#?}");
        assert!(
            has(&|f| f
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ld-linux"))),
            "the loader: {files:#?}"
        );
        let build_dir = fs::canonicalize(build.path()).unwrap();
        assert!(
            !has(&|f| f.starts_with(&build_dir) || f.starts_with("/tmp")),
            "{files:#?}"
        );
        assert!(files.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        assert!(files
            .iter()
            .all(|f| f.is_file() && fs::canonicalize(f).unwrap() == *f));
    }
}
