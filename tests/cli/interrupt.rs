//! SIGINT and SIGTERM at every stage: nothing left behind, exit 130 / 143.
//!
//! See: issue 8, item 6 ("Signals leave nothing behind"). Each test starts the real binary
//! with `TMPDIR` pointed at a folder of its own, waits until the run is *in* the stage (the
//! temporary tree exists and grows, the file being hashed is being read, the build has
//! started, the attestation's temporary file exists), sends the signal, and then checks the
//! exit code, the one-line message, that the folder is empty and that no `.reprove-*.tmp`
//! remains. The large inputs are made once per test run and kept under `target/tmp`.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::support::{Demo, BUNDLE};

/// The stages' inputs are large: one interrupted run at a time keeps a loaded machine from
/// turning a second-long window into a missed one.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// How long a stage may take to be reached on a loaded machine.
const REACH: Duration = Duration::from_secs(300);

fn cache() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("interrupt-inputs");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `make` the file `name` in the cache unless a complete one is there (written under another
/// name and renamed, so a test run killed halfway leaves no half file to reuse).
fn cached(name: &str, make: impl FnOnce(&Path)) -> PathBuf {
    let path = cache().join(name);
    if !path.exists() {
        let tmp = cache().join(format!(".{name}.{}", std::process::id()));
        make(&tmp);
        fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// A tar written by `write` into `path`, gzipped by the system's `gzip -1` (faster than a
/// debug build's deflate).
fn tar_gz(path: &Path, write: impl FnOnce(&mut tar::Builder<&mut std::process::ChildStdin>)) {
    let mut gzip = Command::new("gzip")
        .args(["-1", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(fs::File::create(path).unwrap())
        .spawn()
        .expect("gzip is installed");
    let mut stdin = gzip.stdin.take().unwrap();
    let mut tar = tar::Builder::new(&mut stdin);
    write(&mut tar);
    tar.finish().unwrap();
    drop(tar);
    drop(stdin);
    assert!(gzip.wait().unwrap().success());
}

/// A tar.gz escrow of 40 000 small files in 200 folders: seconds to unpack, a moment to make.
fn big_escrow() -> &'static (PathBuf, String) {
    static ESCROW: OnceLock<(PathBuf, String)> = OnceLock::new();
    ESCROW.get_or_init(|| {
        let path = cached("escrow-40k-files.tar.gz", |tmp| {
            tar_gz(tmp, |tar| {
                let data = vec![b'x'; 512];
                for d in 0..200 {
                    for f in 0..200 {
                        let mut h = tar::Header::new_gnu();
                        h.set_size(data.len() as u64);
                        h.set_mode(0o644);
                        h.set_cksum();
                        tar.append_data(&mut h, format!("d{d:03}/f{f:03}.c"), &data[..])
                            .unwrap();
                    }
                }
            });
        });
        let digest = sha256_of(&path);
        (path, digest)
    })
}

/// A sparse file of 8 GiB: seconds to hash, nothing on disk.
fn big_file() -> PathBuf {
    cached("sparse-8g.bin", |tmp| {
        fs::File::create(tmp).unwrap().set_len(8 << 30).unwrap();
    })
}

/// Two tar.gz of one 768 MiB member that differ only in the gzip header's mtime: `diff`
/// decompresses both into temporary files before it compares them. Made in a moment.
fn big_archives() -> &'static (PathBuf, PathBuf) {
    static PAIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let left = cached("zeros-left.tar.gz", |tmp| {
            // Gzip members one after another are one stream: the tar header, then the same
            // compressed MiB of zeros again and again, then the tar's end.
            let gz = |data: &[u8]| {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(data).unwrap();
                enc.finish().unwrap()
            };
            let mut h = tar::Header::new_gnu();
            h.set_path("fw.img").unwrap();
            h.set_size(768 << 20);
            h.set_mode(0o644);
            h.set_cksum();
            let mib = gz(&vec![0; 1 << 20]);
            let mut out = std::io::BufWriter::new(fs::File::create(tmp).unwrap());
            out.write_all(&gz(h.as_bytes())).unwrap();
            for _ in 0..768 {
                out.write_all(&mib).unwrap();
            }
            out.write_all(&gz(&[0; 1024])).unwrap();
            out.flush().unwrap();
        });
        let right = cached("zeros-right.tar.gz", |tmp| {
            let mut bytes = fs::read(&left).unwrap();
            bytes[4] ^= 1; // the first gzip header's mtime
            fs::write(tmp, bytes).unwrap();
        });
        (left, right)
    })
}

fn sha256_of(path: &Path) -> String {
    let bytes = fs::read(path).unwrap();
    reprove::hash::Checksum::of(reprove::hash::Algorithm::Sha256, &bytes).to_string()
}

/// A temporary file of `reprove::atomic::write_atomic`: `.reprove-XXXXXX.tmp`.
fn is_partial(path: &str) -> bool {
    let name = Path::new(path)
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    name.starts_with(".reprove-") && Path::new(path).extension().is_some_and(|e| e == "tmp")
}

/// A run of the real binary in `root`, with `TMPDIR` at `root/tmp`.
struct Run {
    child: Child,
    tmp: PathBuf,
    root: PathBuf,
}

impl Run {
    fn start(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("reprove"))
            .current_dir(root)
            .env("TMPDIR", &tmp)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Run {
            child,
            tmp,
            root: root.to_path_buf(),
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// Wait until `reached` holds; the run must still be going by then.
    fn wait_for(&mut self, stage: &str, reached: impl Fn(&Run) -> bool) {
        let deadline = Instant::now() + REACH;
        while !reached(self) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the run ended ({status}) before reaching {stage}");
            }
            assert!(Instant::now() < deadline, "{stage} was never reached");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send `signal`, and check what the run leaves: the exit code the shell expects, one line
    /// naming the signal, no temporary file or folder. Returns what it wrote on stderr.
    fn interrupt(self, signal: i32, name: &str) -> String {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.pid(), signal) };
        let out = self.child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            None,
            "reprove was killed by signal {:?} instead of cleaning up; stderr: {stderr}",
            out.status.signal()
        );
        assert_eq!(
            out.status.code(),
            Some(128 + signal),
            "exit code after {name}; stderr: {stderr}"
        );
        assert!(
            stderr.contains(&format!("interrupted by {name}")),
            "one line naming the signal: {stderr}"
        );
        assert_eq!(leftovers(&self.tmp), Vec::<String>::new(), "left in TMPDIR");
        let partial: Vec<String> = walk(&self.root)
            .into_iter()
            .filter(|p| is_partial(p))
            .collect();
        assert_eq!(partial, Vec::<String>::new(), "half-written files left");
        stderr.into_owned()
    }
}

/// Every path below `dir`, relative to it.
fn walk(dir: &Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect()
}

/// What a run left in `tmp`: the first few paths, enough to say what.
fn leftovers(tmp: &Path) -> Vec<String> {
    let mut all = walk(tmp);
    all.sort();
    all.truncate(5);
    all
}

/// The folders below `tmp` whose name starts with `prefix`, and below each the path `rel`.
fn under_tmp(tmp: &Path, prefix: &str, rel: &str) -> Vec<PathBuf> {
    fs::read_dir(tmp)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path().join(rel))
                .collect()
        })
        .unwrap_or_default()
}

fn entries(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, Iterator::count)
}

/// How far process `pid` has read into its open file `path` (0 if it has not opened it).
fn read_position(pid: i32, path: &Path) -> u64 {
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    for fd in fds.filter_map(Result::ok) {
        if fs::read_link(fd.path()).is_ok_and(|target| target == path) {
            let info = format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy());
            let text = fs::read_to_string(info).unwrap_or_default();
            return text
                .lines()
                .find_map(|l| l.strip_prefix("pos:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        }
    }
    0
}

/// The demo (on the host backend) with `edit` applied to its recipe, locked with the declared
/// tools only: a traced lock would run builds these tests never mean to finish.
fn demo_with(edit: impl FnOnce(String) -> String) -> Demo {
    let demo = Demo::new("none");
    demo.set_recipe(&edit(demo.recipe()));
    demo.env
        .cmd(["lock", "--no-trace", "operator/reprove.toml"])
        .assert()
        .success();
    demo
}

const VERIFY: [&str; 7] = [
    "verify",
    "operator/reprove.toml",
    "--unsigned",
    "--out",
    "att.intoto.jsonl",
    "--shipped",
    BUNDLE,
];

/// The demo with the large escrow for its source (never built: the signal comes first).
fn big_escrow_demo() -> Demo {
    let (escrow, digest) = big_escrow();
    demo_with(|recipe| {
        let old_digest = recipe
            .lines()
            .find(|l| l.starts_with("digest = "))
            .unwrap()
            .to_owned();
        recipe
            .replace(
                "path = \"escrow/acme-router-fw-1.0.0.tar.gz\"",
                &format!("path = \"{}\"", escrow.display()),
            )
            .replace(&old_digest, &format!("digest = \"{digest}\""))
    })
}

fn unpacking_the_escrow(signal: i32, name: &str) {
    let demo = big_escrow_demo();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut run = Run::start(demo.env.root(), &VERIFY, &[]);
    run.wait_for("the escrow's unpacking", |run| {
        under_tmp(&run.tmp, "reprove-", "rebuild-1/tree")
            .iter()
            .any(|tree| entries(tree) >= 5)
    });
    run.interrupt(signal, name);
}

#[test]
fn sigint_while_unpacking_the_escrow() {
    unpacking_the_escrow(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_while_unpacking_the_escrow() {
    unpacking_the_escrow(libc::SIGTERM, "SIGTERM");
}

/// A work folder the user names is the user's: an interrupted run leaves it and says so, but
/// not the tree it was unpacking (unpacking is all or nothing).
#[test]
fn an_interrupted_work_dir_is_left_without_the_partial_tree() {
    let demo = big_escrow_demo();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut args = VERIFY.to_vec();
    args.extend(["--work-dir", "work"]);
    let mut run = Run::start(demo.env.root(), &args, &[]);
    let tree = demo.env.path("work/rebuild-1/tree");
    run.wait_for("the escrow's unpacking", |_| entries(&tree) >= 5);
    let stderr = run.interrupt(libc::SIGINT, "SIGINT");
    assert!(
        stderr.contains("hint: the work folder `work` keeps what the run made"),
        "{stderr}"
    );
    assert!(
        demo.env.path("work/rebuild-1").is_dir(),
        "the work folder stays"
    );
    assert!(!tree.exists(), "the half-unpacked tree is removed");
}

/// A hermetic root is unpacked into the cache under a temporary name and renamed when whole:
/// an interrupt leaves no `.unpack-*` folder there. (Any tar serves as a root to unpack; this
/// one is never built in.)
fn unpacking_a_hermetic_root(signal: i32, name: &str) {
    let (archive, digest) = big_escrow();
    let demo = demo_with(|recipe| {
        recipe.replace(
            "isolation = \"none\"",
            &format!(
                "isolation = \"sandbox\"\nroot = {{ path = \"{}\", digest = \"{digest}\" }}",
                archive.display()
            ),
        )
    });
    let cache = demo.env.path("cache");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let cache_arg = cache.display().to_string();
    let mut run = Run::start(
        demo.env.root(),
        &VERIFY,
        &[("REPROVE_CACHE_DIR", &cache_arg)],
    );
    let roots = cache.join("roots");
    run.wait_for("the root's unpacking", |_| {
        under_tmp(&roots, ".unpack-", "")
            .iter()
            .any(|dir| entries(dir) >= 5)
    });
    run.interrupt(signal, name);
    assert_eq!(leftovers(&roots), Vec::<String>::new(), "left in the cache");
}

#[test]
fn sigint_while_unpacking_a_hermetic_root() {
    unpacking_a_hermetic_root(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_while_unpacking_a_hermetic_root() {
    unpacking_a_hermetic_root(libc::SIGTERM, "SIGTERM");
}

fn hashing_a_large_file(signal: i32, name: &str) {
    let file = big_file();
    let dir = tempfile::tempdir().unwrap();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let file_arg = file.display().to_string();
    let mut run = Run::start(dir.path(), &["hash", &file_arg], &[]);
    run.wait_for("the hashing", |run| {
        read_position(run.pid(), &file) >= 64 << 20
    });
    run.interrupt(signal, name);
}

#[test]
fn sigint_while_hashing() {
    hashing_a_large_file(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_while_hashing() {
    hashing_a_large_file(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_while_hashing() {
    hashing_a_large_file(libc::SIGHUP, "SIGHUP");
}

fn diff_decompressing(signal: i32, name: &str) {
    let (left, right) = big_archives();
    let dir = tempfile::tempdir().unwrap();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let (left, right) = (left.display().to_string(), right.display().to_string());
    let mut run = Run::start(dir.path(), &["diff", &left, &right], &[]);
    run.wait_for("the decompression", |run| {
        walk(&run.tmp).iter().any(|p| {
            fs::metadata(run.tmp.join(p)).is_ok_and(|m| m.is_file() && m.len() >= 16 << 20)
        })
    });
    run.interrupt(signal, name);
}

#[test]
fn sigint_while_diff_decompresses() {
    diff_decompressing(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_while_diff_decompresses() {
    diff_decompressing(libc::SIGTERM, "SIGTERM");
}

fn the_second_rebuild(signal: i32, name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("second-rebuild-started");
    let demo = demo_with(|recipe| {
        recipe.replace(
            "command = [\"make\"]",
            &format!(
                "command = [\"sh\", \"-c\", \"make && case $PWD in */rebuild-2/*) : > {}; \
                 exec sleep 300;; esac\"]",
                marker.display()
            ),
        )
    });
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut args = VERIFY.to_vec();
    args.extend(["--rebuilds", "2"]);
    let mut run = Run::start(demo.env.root(), &args, &[]);
    run.wait_for("the second rebuild", |_| marker.exists());
    run.interrupt(signal, name);
}

#[test]
fn sigint_during_the_second_rebuild() {
    the_second_rebuild(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_during_the_second_rebuild() {
    the_second_rebuild(libc::SIGTERM, "SIGTERM");
}

/// Writing the attestation takes a millisecond: the debug build's test-only pause
/// (`REPROVE_TEST_PAUSE`, see `src/interrupt.rs`) holds the run there, with the temporary
/// file written and not yet renamed into place.
fn writing_the_attestation(signal: i32, name: &str) {
    let demo = demo_with(|recipe| recipe);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut run = Run::start(
        demo.env.root(),
        &VERIFY,
        &[("REPROVE_TEST_PAUSE", "atomic-write")],
    );
    run.wait_for("the attestation's write", |run| {
        fs::read_dir(&run.root)
            .unwrap()
            .any(|e| is_partial(&e.unwrap().file_name().to_string_lossy()))
    });
    let attestation = demo.env.path("att.intoto.jsonl");
    run.interrupt(signal, name);
    assert!(!attestation.exists(), "an interrupted write writes nothing");
}

#[test]
fn sigint_while_writing_the_attestation() {
    writing_the_attestation(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_while_writing_the_attestation() {
    writing_the_attestation(libc::SIGTERM, "SIGTERM");
}

/// A batch (`verify --manifest`, two jobs) interrupted while two releases build: both builds
/// are killed, nothing is left in `TMPDIR`, the third release never starts, and no attestation
/// is written for a release that did not end (issue 11, item 1).
#[test]
fn sigint_during_a_batch_kills_every_build() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().to_path_buf();
    let demo = demo_with(|recipe| {
        recipe.replace(
            "command = [\"make\"]",
            &format!(
                "command = [\"sh\", \"-c\", \"echo $$ > {}/$$; exec sleep 300\"]",
                started.display()
            ),
        )
    });
    let release = "[[release]]\nrecipe = \"operator/reprove.toml\"\nshipped = [\"shipped/acme-router-fw-1.0.0.tar.gz\"]\n";
    let manifest = [0, 1, 2].map(|i| format!("{release}out = \"r{i}.intoto.jsonl\"\n"));
    let manifest = manifest.concat();
    demo.env.write("releases.toml", manifest);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    let mut run = Run::start(
        demo.env.root(),
        &[
            "verify",
            "--manifest",
            "releases.toml",
            "--jobs",
            "2",
            "--unsigned",
            "--out-dir",
            "atts",
        ],
        &[],
    );
    run.wait_for("two builds", |_| entries(&started) == 2);
    let builds: Vec<i32> = fs::read_dir(&started)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    run.interrupt(libc::SIGINT, "SIGINT");
    for pid in builds {
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "build {pid} outlived the interrupt");
    }
    assert_eq!(
        entries(&started),
        2,
        "a third release started after the signal"
    );
    assert_eq!(entries(&demo.env.path("atts")), 0);
}
