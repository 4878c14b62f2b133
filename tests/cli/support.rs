//! A temporary directory to run `reprove` in, with files written into it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub struct TestEnv {
    dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Write `contents` at `rel`, creating parent directories.
    pub fn file(self, rel: &str, contents: impl AsRef<[u8]>) -> Self {
        self.write(rel, contents);
        self
    }

    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    }

    /// `reprove ARGS…` run in the environment's directory, with colour off.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::cargo_bin("reprove").expect("the reprove binary");
        // The user's own config (`~/.config/reprove`) never reaches a test: a test that
        // wants one writes `.config/reprove/config.toml` in its environment.
        cmd.current_dir(self.root())
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", self.root().join(".config"))
            .env_remove("REPROVE_CONFIG")
            .env_remove("REPROVE_VERIFIER_ID")
            .args(args);
        cmd
    }
}

/// The vendor's release bundle in a [`Demo`], relative to its root.
pub const BUNDLE: &str = "shipped/acme-router-fw-1.0.0.tar.gz";

/// The bundled demo firmware, laid out as an operator has it: a recipe and its escrow in
/// `operator/`, the vendor's release bundle in `shipped/`.
pub struct Demo {
    pub env: TestEnv,
    pub escrow_digest: String,
}

/// The vendor's release, built once per test run from the demo's escrow (in its own folder).
fn vendor_release() -> &'static Path {
    static RELEASE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    RELEASE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("reprove-test-vendor-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let build = dir.join("build");
        std::fs::create_dir_all(&build).unwrap();
        run_ok(std::process::Command::new(demo_dir().join("make-escrow.sh")).arg(&dir));
        run_ok(
            std::process::Command::new("tar")
                .arg("-xzf")
                .arg(dir.join("acme-router-fw-1.0.0.tar.gz"))
                .arg("-C")
                .arg(&build),
        );
        run_ok(
            std::process::Command::new("make")
                .args(["-s", "-C"])
                .arg(&build)
                .env_clear()
                .env("PATH", "/usr/bin:/bin")
                .env("SOURCE_DATE_EPOCH", "1700000000"),
        );
        build.join("out/acme-router-fw-1.0.0.tar.gz")
    })
}

/// The sha256 of the `reprove` binary under test, computed once per test process (by
/// coreutils: the debug build of sha2 would take seconds over a debug binary).
fn reprove_binary_digest() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let out = run_ok(
            std::process::Command::new("sha256sum").arg(assert_cmd::cargo::cargo_bin("reprove")),
        );
        out.split_whitespace().next().unwrap().to_owned()
    })
}

pub fn demo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/demo")
}

pub fn run_ok(cmd: &mut std::process::Command) -> String {
    let out = cmd.output().expect("the command starts");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Demo {
    /// The demo's recipe (from the template, isolation as given) and escrow, and the shipped
    /// bundle; not yet locked.
    pub fn new(isolation: &str) -> Demo {
        let env = TestEnv::new();
        let digest = run_ok(
            std::process::Command::new(demo_dir().join("make-escrow.sh"))
                .arg(env.path("operator/escrow")),
        )
        .trim()
        .to_owned();
        let template = std::fs::read_to_string(demo_dir().join("reprove.toml.in")).unwrap();
        let recipe = template.replace("sha256:REPLACE_ME", &digest).replace(
            "isolation = \"sandbox\"",
            &format!("isolation = \"{isolation}\""),
        );
        env.write("operator/reprove.toml", recipe);
        std::fs::create_dir_all(env.path("shipped")).unwrap();
        std::fs::copy(
            vendor_release(),
            env.path("shipped/acme-router-fw-1.0.0.tar.gz"),
        )
        .unwrap();
        Demo {
            env,
            escrow_digest: digest,
        }
    }

    /// `new` and `reprove lock`: the lock is the one a traced `reprove lock` of this very
    /// demo wrote, shared across the test run (see [`Demo::lock`]).
    pub fn locked(isolation: &str) -> Demo {
        let demo = Demo::new(isolation);
        demo.lock();
        demo
    }

    /// `operator/reprove.lock` as `reprove lock operator/reprove.toml` writes it, without
    /// tracing the build again when an earlier test already locked the same inputs.
    ///
    /// A traced lock runs the whole demo build under strace, and dozens of tests lock the
    /// very same demo: the first one runs `reprove lock` for real and keeps what it wrote
    /// under `target/tmp/demo-lock/`, and every later one copies it. The key is everything
    /// the lock is made from: the reprove binary, every file under `operator/` (the recipe,
    /// whose digest pins the escrow, and the escrow), the test's own `reprove` config, the
    /// demo's sources and the host's installed packages (`/var/lib/dpkg/status`: the pins are
    /// host files, and a package installed or upgraded changes them). Made under a file lock
    /// and renamed into place, so concurrent tests and test processes (nextest) trace each
    /// key once and never read a half-written lock. Tests of `lock` itself run it directly.
    pub fn lock(&self) {
        let dest = self.env.path("operator/reprove.lock");
        let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("demo-lock");
        std::fs::create_dir_all(&cache).unwrap();
        let key = self.lock_key();
        let kept = cache.join(format!("{key}.lock"));
        if !kept.exists() {
            let guard = std::fs::File::create(cache.join(format!("{key}.flock"))).unwrap();
            rustix::fs::flock(&guard, rustix::fs::FlockOperation::LockExclusive).unwrap();
            if !kept.exists() {
                self.env
                    .cmd(["lock", "operator/reprove.toml"])
                    .assert()
                    .success();
                let staged = tempfile::NamedTempFile::new_in(&cache).unwrap();
                std::fs::copy(&dest, staged.path()).unwrap();
                staged.persist(&kept).unwrap();
                return;
            }
        }
        std::fs::copy(&kept, &dest).unwrap();
    }

    /// The digest of everything `reprove lock` of this demo depends on (see [`Demo::lock`]).
    fn lock_key(&self) -> String {
        use sha2::Digest as _;
        let mut key = sha2::Sha256::new();
        key.update(b"reprove-test-demo-lock-1\0");
        key.update(reprove_binary_digest().as_bytes());
        key.update(std::fs::read("/var/lib/dpkg/status").unwrap_or_default());
        for (base, dir) in [
            ("operator", self.env.path("operator")),
            (".config", self.env.path(".config")),
            ("testdata/demo", demo_dir()),
        ] {
            if !dir.exists() {
                continue;
            }
            for entry in walkdir::WalkDir::new(&dir).sort_by_file_name() {
                let entry = entry.unwrap();
                let rel = entry.path().strip_prefix(&dir).unwrap();
                if rel == Path::new("reprove.lock") && base == "operator" {
                    continue;
                }
                let bytes = if entry.file_type().is_file() {
                    std::fs::read(entry.path()).unwrap()
                } else if entry.file_type().is_symlink() {
                    std::fs::read_link(entry.path())
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    Vec::new()
                };
                let name = Path::new(base).join(rel);
                for part in [name.as_os_str().as_encoded_bytes(), &bytes] {
                    key.update((part.len() as u64).to_le_bytes());
                    key.update(part);
                }
            }
        }
        key.finalize().iter().fold(String::new(), |mut hex, b| {
            use std::fmt::Write as _;
            write!(hex, "{b:02x}").unwrap();
            hex
        })
    }

    pub fn recipe(&self) -> String {
        std::fs::read_to_string(self.env.path("operator/reprove.toml")).unwrap()
    }

    pub fn set_recipe(&self, text: &str) {
        self.env.write("operator/reprove.toml", text);
    }

    /// `reprove verify` on the demo recipe, unsigned, with the attestation in `att.intoto.jsonl`.
    pub fn verify<I, S>(&self, shipped: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self
            .env
            .cmd(["verify", "operator/reprove.toml", "--unsigned"]);
        cmd.args(["--out", "att.intoto.jsonl", "--shipped"])
            .args(shipped);
        cmd
    }
}

impl Demo {
    /// Unpack the shipped bundle into `rel`; returns the folder.
    pub fn unpack_bundle(&self, rel: &str) -> PathBuf {
        let dir = self.env.path(rel);
        std::fs::create_dir_all(&dir).unwrap();
        run_ok(
            std::process::Command::new("tar")
                .arg("-xzf")
                .arg(self.env.path(BUNDLE))
                .arg("-C")
                .arg(&dir),
        );
        dir
    }
}

/// Unpack the shipped bundle, change `firmware.img` with `edit`, repack it as the vendor did.
pub fn tamper(demo: &Demo, edit: impl FnOnce(&mut Vec<u8>)) {
    let dir = demo.unpack_bundle("unpacked");
    let img = dir.join("firmware.img");
    let mut bytes = std::fs::read(&img).unwrap();
    edit(&mut bytes);
    std::fs::write(&img, bytes).unwrap();
    run_ok(std::process::Command::new("sh").arg("-c").arg(format!(
        "tar -C {} --format=ustar --sort=name --mtime=@1700000000 --owner=0 --group=0 \
         --numeric-owner --mode=u=rw,go=r -cf - firmware.img manifest.txt | gzip -n -9 > {}",
        dir.display(),
        demo.env.path(BUNDLE).display()
    )));
}

/// What headless Chromium makes of a page: the DOM after parsing.
pub fn browse(page: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium must be installed (scripts/test.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The python of a venv under `target/tmp/NAME` with `requirements` installed by pip: built
/// aside and renamed into place, so a concurrent or interrupted run never sees a half-made
/// one, and reused by later runs (name it after the pinned versions). Panics (never skips)
/// when python3 or its venv module is missing: these checks are part of the suite.
pub fn python_venv(name: &str, requirements: &Path) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join(name);
    let python = venv.join("bin/python");
    if venv.join("ready").exists() {
        return python;
    }
    let staging = tempfile::Builder::new()
        .prefix(&format!("{name}-staging-"))
        .tempdir_in(tmp)
        .unwrap();
    let staged = staging.path().join("venv");
    run_ok(
        std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&staged),
    );
    run_ok(
        std::process::Command::new(staged.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
            ])
            .arg(requirements),
    );
    std::fs::write(staged.join("ready"), name).unwrap();
    // Another run may have won the race; its venv is as good as ours.
    let _ = std::fs::rename(&staged, &venv);
    assert!(
        venv.join("ready").exists(),
        "no venv at `{}`",
        venv.display()
    );
    python
}
