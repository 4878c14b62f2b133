//! The bubblewrap backend (`isolation = "sandbox"`): namespaces, no network, a read-only
//! toolchain, the build tree at `/build`.
//!
//! Every namespace is unshared (user, mount, pid, network, ipc, uts, cgroup), so the build has a
//! loopback interface and nothing else, its own hostname `reprove`, and no capabilities. The
//! file system is a read-only tmpfs holding, read-only, every top-level entry of a root folder:
//! the lock's view (exactly the pinned files and links, from the store: see [`crate::store`]) or
//! a hermetic root. Only `reprove lock`'s tracer, which must learn what a build reads, sees the
//! host's toolchain instead (`/usr`, the merged-`/usr` links `/bin`, `/sbin`, `/lib*`, the
//! two entries of `/etc` the loader and `cc` need, and the dpkg database `/var/lib/dpkg`,
//! which Debian source-package builds read, so that what they read of it is pinned). Then the build tree read-write at
//! `/build` (the working directory), a fresh `/tmp`, `/proc` and a minimal `/dev`. The host's
//! `/etc`, `/root` and `/home` are not there. The environment is exactly the invocation's, plus
//! `PWD=/build`, which bubblewrap always sets.
//!
//! Nothing outlives [`Sandbox::run`]: the command is the only child of pid 1 in a pid
//! namespace, and when pid 1 exits the kernel kills everything else in it, whether it left the
//! process group or not. pid 1 exits when the command does, or at the timeout, when the whole
//! process group of `bwrap` (pid 1 included) is killed. `bwrap` itself exits before the kernel
//! has finished, so `run` also waits for pid 1, whose host pid `bwrap` reports on `--info-fd`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::host::run_in_group;
use super::{Error, Invocation, Outcome, Sandbox};

/// Where `bwrap` is looked for: a fixed `PATH`, never the caller's.
const SEARCH_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// The build tree, inside the sandbox.
const BUILD: &str = "/build";
/// The host name a build sees in the sandbox (its own UTS namespace).
pub(crate) const HOSTNAME: &str = "reprove";

/// The host's toolchain, when there is no hermetic root: `/usr` and the merged-`/usr` links.
const HOST_TOP: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// What a compiler and make need from the host's `/etc`: the loader's cache and the
/// `cc`/`c++` alternatives links. Nothing else of `/etc` (users, hosts, resolvers) is shown.
const HOST_ETC: &[&str] = &["ld.so.cache", "alternatives"];

/// The dpkg database (`status`, `info/*.list`, `arch`): `dpkg-buildpackage` reads it to
/// check build dependencies and to write the `.buildinfo`. Shown read-only to the tracer so
/// that the files a Debian build reads of it are pinned and land in the lock's view.
const HOST_DPKG: &str = "/var/lib/dpkg";

/// Where a trace log is bound inside the sandbox, for `strace` (see [`super::trace`]).
pub(crate) const TRACE_LOG: &str = "/.reprove-trace";

/// Top-level entries of a hermetic root the sandbox provides itself.
const PROVIDED: &[&str] = &["build", "dev", "proc", "tmp"];

/// Runs builds in a bubblewrap sandbox.
#[derive(Debug, Clone)]
pub(crate) struct Bwrap {
    program: PathBuf,
    version: String,
    root: Option<PathBuf>,
}

impl Bwrap {
    /// Find `bwrap` and check, by running `true` in the very sandbox builds get, that the
    /// kernel lets it create its namespaces. `root` is the folder builds see as `/`: a hermetic
    /// root (see [`super::rootfs::prepare_root`]) or a lock's view (see [`crate::store`]);
    /// without one, the host's toolchain is shown read-only (only `reprove lock`'s tracer and
    /// the probe run so).
    pub(crate) fn detect(root: Option<&Path>) -> Result<Bwrap, Error> {
        let program = SEARCH_PATH
            .iter()
            .map(|dir| Path::new(dir).join("bwrap"))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::Unavailable(
                    "bubblewrap (`bwrap`) is not installed; install it: \
                     `apt-get install bubblewrap`, or choose `isolation = \"none\"` in the \
                     recipe knowingly"
                        .to_owned(),
                )
            })?;
        let output = Command::new(&program)
            .arg("--version")
            .env_clear()
            .output()
            .map_err(|source| Error::Spawn {
                program: program.display().to_string(),
                source,
            })?;
        let text = String::from_utf8_lossy(&output.stdout);
        let version = text
            .trim()
            .strip_prefix("bubblewrap ")
            .unwrap_or(text.trim())
            .to_owned();
        // The probe runs in the host's toolchain: it asks whether the kernel lets bwrap make
        // its namespaces, not whether a root or a lock's view has `true` in it.
        let bwrap = Bwrap {
            program,
            version,
            root: None,
        };
        bwrap.probe()?;
        Ok(Bwrap {
            root: root.map(Path::to_path_buf),
            ..bwrap
        })
    }

    /// The hermetic root, if builds see one instead of the host's toolchain.
    pub(crate) fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn probe(&self) -> Result<(), Error> {
        let dir = tempfile::tempdir().map_err(|source| Error::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let env = [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into();
        let argv = ["true".to_owned()];
        let mut cmd = self.command(dir.path(), None, &env, false, None, None, 1 << 20)?;
        cmd.args(argv);
        let output = cmd.output().map_err(|source| Error::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        if output.status.success() {
            return Ok(());
        }
        Err(Error::Unavailable(format!(
            "bubblewrap (`{}`) cannot create the sandbox: {}; enable unprivileged user \
             namespaces (`sysctl kernel.unprivileged_userns_clone=1`, and on Ubuntu \
             `sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or choose \
             `isolation = \"none\"` in the recipe knowingly",
            self.program.display(),
            String::from_utf8_lossy(&output.stderr).trim(),
        )))
    }

    /// Run `prefix` and then the invocation's argv in the sandbox; return once no process of
    /// the sandbox is left, which is later than `bwrap` itself exits.
    pub(crate) fn run_with(
        &self,
        inv: &Invocation<'_>,
        trace_log: Option<&Path>,
        prefix: &[&str],
    ) -> Result<Outcome, Error> {
        if inv.argv.is_empty() {
            return Err(Error::EmptyCommand);
        }
        let (info, info_write) = pipe().map_err(|source| Error::Spawn {
            program: self.program.display().to_string(),
            source,
        })?;
        let fd = info_write.as_raw_fd();
        let mut cmd = self.command(
            inv.build_dir,
            inv.workdir,
            inv.env,
            inv.env_reversed,
            trace_log,
            Some(fd),
            inv.limits.disk,
        )?;
        cmd.args(prefix).args(inv.argv);
        // SAFETY: fcntl is async-signal-safe; the pipe survives exec in the child only.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let outcome = run_in_group(cmd, inv);
        drop(info_write);
        // bwrap exits as soon as its pid 1 reports the command's status, before the kernel
        // has killed what the command left behind in the namespace.
        if let Some(pid) = sandbox_pid(info) {
            wait_exited(pid);
        }
        outcome
    }

    /// `bwrap` with every option, ready for the command's argv; `trace_log` is a host file
    /// bound read-write at [`TRACE_LOG`] for `strace` to write to; `/tmp` holds `tmp_size`
    /// bytes at most.
    // Each argument is one of bwrap's options; a struct for them would only rename them.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &self,
        build_dir: &Path,
        workdir: Option<&Path>,
        env: &BTreeMap<String, String>,
        env_reversed: bool,
        trace_log: Option<&Path>,
        info_fd: Option<RawFd>,
        tmp_size: u64,
    ) -> Result<Command, Error> {
        let mut cmd = Command::new(&self.program);
        // bwrap itself runs with an empty environment, so nothing of the recipe's (say
        // `LD_PRELOAD`) touches it on the host; the build gets its own through `--setenv`.
        cmd.env_clear();
        cmd.args(["--unshare-all", "--cap-drop", "ALL", "--die-with-parent"]);
        cmd.args(["--new-session", "--hostname", HOSTNAME]);
        match &self.root {
            None => {
                for name in HOST_TOP {
                    mount_top(&mut cmd, Path::new("/"), name)?;
                }
                cmd.args(["--perms", "0755", "--dir", "/etc"]);
                for name in HOST_ETC {
                    let host = Path::new("/etc").join(name);
                    if host.exists() {
                        cmd.arg("--ro-bind").arg(&host).arg(&host);
                    }
                }
                if Path::new(HOST_DPKG).is_dir() {
                    cmd.arg("--ro-bind").arg(HOST_DPKG).arg(HOST_DPKG);
                }
            }
            Some(root) => {
                let entries = fs::read_dir(root).map_err(|source| root_err(root, source))?;
                let mut names = entries
                    .map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|source| root_err(root, source))?;
                names.sort();
                for name in names.iter().filter_map(|n| n.to_str()) {
                    if !PROVIDED.contains(&name) {
                        mount_top(&mut cmd, root, name)?;
                    }
                }
            }
        }
        cmd.arg("--bind").arg(build_dir).arg(BUILD);
        // `/tmp` is memory: bounded like the build tree.
        cmd.args([
            "--perms",
            "1777",
            "--size",
            &tmp_size.to_string(),
            "--tmpfs",
            "/tmp",
        ]);
        cmd.args(["--proc", "/proc", "--dev", "/dev"]);
        if let Some(log) = trace_log {
            cmd.arg("--bind").arg(log).arg(TRACE_LOG);
        }
        cmd.args(["--remount-ro", "/"]);
        let start = workdir.map_or_else(|| PathBuf::from(BUILD), |w| Path::new(BUILD).join(w));
        cmd.arg("--chdir").arg(start).arg("--clearenv");
        // `--setenv` sets the variables in the order given: the build sees that order.
        let vars: Vec<_> = if env_reversed {
            env.iter().rev().collect()
        } else {
            env.iter().collect()
        };
        for (key, value) in vars {
            cmd.args(["--setenv", key, value]);
        }
        if let Some(fd) = info_fd {
            cmd.args(["--info-fd", &fd.to_string()]);
        }
        cmd.arg("--");
        Ok(cmd)
    }
}

/// Show `dir/name` at `/name`: a symlink as the same symlink, anything else bound read-only.
fn mount_top(cmd: &mut Command, dir: &Path, name: &str) -> Result<(), Error> {
    let host = dir.join(name);
    let inside = Path::new("/").join(name);
    match fs::symlink_metadata(&host) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let target = fs::read_link(&host).map_err(|source| root_err(&host, source))?;
            cmd.arg("--symlink").arg(target).arg(inside);
        }
        Ok(_) => {
            cmd.arg("--ro-bind").arg(host).arg(inside);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(root_err(&host, source)),
    }
    Ok(())
}

fn root_err(path: &Path, source: std::io::Error) -> Error {
    Error::RootRead {
        path: path.to_path_buf(),
        source,
    }
}

impl Sandbox for Bwrap {
    fn version(&self) -> Option<String> {
        Some(self.version.clone())
    }

    fn build_path(&self, _host_dir: &Path) -> PathBuf {
        PathBuf::from(BUILD)
    }

    fn run(&self, inv: &Invocation<'_>) -> Result<Outcome, Error> {
        self.run_with(inv, None, &[])
    }
}

/// A pipe whose read end does not block: bwrap's `--info-fd`.
fn pipe() -> io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills both descriptors on success, and each is owned exactly once below.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
        let (read, write) = (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]));
        if libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((File::from(read), write))
    }
}

/// The host pid of the sandbox's pid 1, from what bwrap wrote to its `--info-fd`.
fn sandbox_pid(mut info: File) -> Option<libc::pid_t> {
    let mut text = Vec::new();
    // Whatever is there: a process in the sandbox may hold the write end, so never wait.
    let _ = info.read_to_end(&mut text);
    let value: serde_json::Value = serde_json::from_slice(&text).ok()?;
    value.get("child-pid")?.as_i64()?.try_into().ok()
}

/// Wait, for a few seconds at most, until `pid` has exited: gone, or a zombie waiting for its
/// parent. When a pid namespace's pid 1 has exited, the kernel has killed all the others.
fn wait_exited(pid: libc::pid_t) {
    let exited = || {
        fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            let state = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
            state.starts_with(['Z', 'X'])
        })
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !exited() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::host::Host;
    use crate::sandbox::Termination;
    use std::net::TcpListener;

    /// Runs `argv` in `build` with a fixed environment; returns the outcome and the log.
    fn run_in(
        sandbox: &dyn Sandbox,
        build: &Path,
        argv: &[&str],
        timeout: Duration,
    ) -> (Outcome, String) {
        let logs = tempfile::tempdir().unwrap();
        let log = logs.path().join("log");
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let env = [
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("ONLY".to_owned(), "this".to_owned()),
        ]
        .into();
        let inv = Invocation {
            argv: &argv,
            env: &env,
            env_reversed: false,
            build_dir: build,
            workdir: None,
            log: &log,
            timeout,
            umask: 0o027,
            limits: crate::sandbox::limits::Limits::default(),
        };
        let outcome = sandbox.run(&inv).unwrap();
        (outcome, fs::read_to_string(&log).unwrap())
    }

    fn run(argv: &[&str]) -> (Outcome, String) {
        let build = tempfile::tempdir().unwrap();
        run_in(&bwrap(), build.path(), argv, Duration::from_secs(30))
    }

    fn bwrap() -> Bwrap {
        Bwrap::detect(None).expect("these tests need bubblewrap: `apt-get install bubblewrap`")
    }

    /// The pids of host processes with `marker` among their arguments.
    fn processes_with(marker: &str) -> Vec<u32> {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == marker.as_bytes()))
            })
            .collect()
    }

    #[test]
    fn reports_its_version() {
        let bwrap = bwrap();
        assert!(bwrap.version().unwrap().starts_with(char::is_numeric));
        assert_eq!(
            bwrap.build_path(Path::new("/anywhere")),
            Path::new("/build")
        );
    }

    #[test]
    fn a_root_without_the_program_runs_nothing_and_says_so() {
        // The probe asks the kernel for namespaces in the host's toolchain; a root (or a
        // lock's view) without the program is the build's failure, named in its log.
        let empty = tempfile::tempdir().unwrap();
        let sandbox = Bwrap::detect(Some(empty.path())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let argv = ["true".to_owned()];
        let env = [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into();
        let outcome = sandbox
            .run(&Invocation {
                argv: &argv,
                env: &env,
                env_reversed: false,
                build_dir: dir.path(),
                workdir: None,
                log: &log,
                timeout: Duration::from_secs(10),
                umask: 0o022,
                limits: crate::sandbox::limits::Limits::default(),
            })
            .unwrap();
        assert!(!outcome.is_success());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("bwrap: execvp true"), "{text}");
        let build = tempfile::tempdir().unwrap();
        let env = BTreeMap::new();
        let inv = Invocation {
            argv: &[],
            env: &env,
            env_reversed: false,
            build_dir: build.path(),
            workdir: None,
            log: &build.path().join("log"),
            timeout: Duration::from_secs(1),
            umask: 0o022,
            limits: crate::sandbox::limits::Limits::default(),
        };
        assert!(matches!(bwrap().run(&inv), Err(Error::EmptyCommand)));
    }

    #[test]
    fn network_is_unreachable_inside_and_reachable_on_the_host() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connect = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
        let argv = ["bash", "-c", connect.as_str()];
        let build = tempfile::tempdir().unwrap();
        let (outcome, log) = run_in(&Host, build.path(), &argv, Duration::from_secs(30));
        assert!(outcome.is_success(), "the host control must connect: {log}");
        let (outcome, log) = run(&argv);
        assert!(!outcome.is_success(), "{log}");
        assert!(!log.contains("connected"), "{log}");
        let (_, log) = run(&[
            "sh",
            "-c",
            "ls /sys/class/net 2>/dev/null || cat /proc/net/dev",
        ]);
        assert!(
            !log.contains("eth") && !log.contains("ens"),
            "only a loopback: {log}"
        );
    }

    #[test]
    fn writes_outside_the_build_tree_fail() {
        let build = tempfile::tempdir().unwrap();
        // Stands in for the recipe's folder: a host folder that is not the build tree, and not
        // under /tmp (which is private in the sandbox, so writing there would prove nothing;
        // a checkout may itself live under /tmp, as CI's does).
        let outside = tempfile::tempdir_in("/var/tmp").unwrap();
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".to_owned());
        let targets = [
            "/etc/reprove-probe".to_owned(),
            format!("{home}/reprove-probe"),
            "/usr/reprove-probe".to_owned(),
            "/reprove-probe".to_owned(),
            outside.path().join("probe").display().to_string(),
        ];
        let script = format!(
            "for p in {}; do mkdir -p \"${{p%/*}}\"; echo x > \"$p\" && echo \"wrote $p\"; done; \
             echo ok > /build/inside; echo ok > /tmp/scratch",
            targets.join(" ")
        );
        let (outcome, log) = run_in(
            &bwrap(),
            build.path(),
            &["sh", "-c", &script],
            Duration::from_secs(30),
        );
        assert!(outcome.is_success(), "{log}");
        assert!(!log.contains("wrote"), "{log}");
        for target in &targets {
            assert!(
                !Path::new(target).exists(),
                "`{target}` appeared on the host"
            );
        }
        assert_eq!(
            fs::read_to_string(build.path().join("inside")).unwrap(),
            "ok\n"
        );
    }

    #[test]
    fn sees_its_own_hostname_and_build_path() {
        let (outcome, log) = run(&["sh", "-c", "cat /proc/sys/kernel/hostname; pwd; ls /"]);
        assert!(outcome.is_success(), "{log}");
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines[..2], ["reprove", "/build"]);
        for hidden in ["root", "home", "work"] {
            assert!(!lines.contains(&hidden), "`/{hidden}` is visible: {log}");
        }
        // Of `/var`, the tracer sees the dpkg database alone (a Debian build reads it).
        if Path::new(HOST_DPKG).is_dir() {
            let (outcome, log) = run(&["sh", "-c", "ls -A /var; ls -A /var/lib"]);
            assert!(outcome.is_success(), "{log}");
            assert_eq!(log, "lib\ndpkg\n");
        }
    }

    #[test]
    fn environment_is_exactly_the_one_given() {
        let (outcome, log) = run(&["env"]);
        assert!(outcome.is_success(), "{log}");
        let mut lines: Vec<&str> = log.lines().collect();
        lines.sort_unstable();
        // bubblewrap sets PWD when it changes into /build.
        assert_eq!(lines, ["ONLY=this", "PATH=/usr/bin:/bin", "PWD=/build"]);
        let (_, log) = run(&["sh", "-c", "umask"]);
        assert_eq!(log.trim(), "0027");
    }

    #[test]
    fn exit_status_is_reported() {
        let (outcome, _) = run(&["sh", "-c", "exit 3"]);
        assert_eq!(outcome.termination, Termination::Exited(3));
    }

    #[test]
    fn background_processes_do_not_outlive_the_build() {
        // A unique argument, so the test finds exactly the processes it started.
        let marker = format!("3000.{}", std::process::id());
        let mut control = Command::new("sleep")
            .arg(&marker)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The child's command line is readable only once it has exec'd.
        let found = (0..100)
            .map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                processes_with(&marker)
            })
            .find(|found| !found.is_empty());
        control.kill().unwrap();
        control.wait().unwrap();
        assert_eq!(
            found,
            Some(vec![control.id()]),
            "the search must find a process"
        );
        // `setsid` leaves the process group, which the host backend cannot follow.
        let script = format!("sleep {marker} & setsid sleep {marker} & echo started");
        let (outcome, log) = run(&["sh", "-c", &script]);
        assert!(outcome.is_success(), "{log}");
        assert_eq!(log.trim(), "started");
        assert_eq!(processes_with(&marker), Vec::<u32>::new());
    }

    #[test]
    fn timeout_kills_the_whole_tree() {
        let marker = format!("3001.{}", std::process::id());
        let script = format!("setsid sleep {marker} & sleep {marker}");
        let build = tempfile::tempdir().unwrap();
        let (outcome, _) = run_in(
            &bwrap(),
            build.path(),
            &["sh", "-c", &script],
            Duration::from_millis(500),
        );
        assert_eq!(outcome.termination, Termination::TimedOut);
        assert!(outcome.elapsed < Duration::from_secs(5));
        assert_eq!(processes_with(&marker), Vec::<u32>::new());
    }

    #[test]
    fn compiles_with_the_host_toolchain() {
        let build = tempfile::tempdir().unwrap();
        fs::write(build.path().join("a.c"), "int main(void) { return 0; }\n").unwrap();
        let (outcome, log) = run_in(
            &bwrap(),
            build.path(),
            &["cc", "-o", "a", "a.c"],
            Duration::from_secs(60),
        );
        assert!(outcome.is_success(), "{log}");
        assert!(build.path().join("a").is_file());
    }
}
