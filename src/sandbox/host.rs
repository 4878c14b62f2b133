//! The host backend (`isolation = "none"`): a cleared environment and a process group.
//!
//! The command runs in a session of its own, so the whole tree it starts can be killed as
//! one group — at the timeout, and after a normal exit too, so that a daemon the build left
//! behind does not outlive the verification. A process that leaves the group on purpose
//! (`setsid`) escapes this backend; the sandbox backend's pid namespace does not let it.
//! On SIGINT, SIGTERM or SIGHUP the group is killed too ([`crate::interrupt`] does it from its
//! handler) and the run ends as [`Error::Interrupted`].

use std::fs::File;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::limits::{disk_usage, Applied, DiskWatch, ProcessGuard};
use super::{Error, Invocation, Outcome, Sandbox, Termination};

/// Runs builds on the host.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Host;

impl Sandbox for Host {
    fn version(&self) -> Option<String> {
        None
    }

    fn build_path(&self, host_dir: &Path) -> PathBuf {
        host_dir.to_path_buf()
    }

    fn run(&self, inv: &Invocation<'_>) -> Result<Outcome, Error> {
        let (program, args) = inv.argv.split_first().ok_or(Error::EmptyCommand)?;
        let mut cmd = Command::new(program);
        cmd.args(args).env_clear().envs(inv.env).current_dir(
            inv.workdir
                .map_or_else(|| inv.build_dir.to_path_buf(), |w| inv.build_dir.join(w)),
        );
        run_in_group(cmd, inv)
    }
}

/// Spawn `cmd` as the leader of a new session with the invocation's umask and limits, its
/// output in the invocation's log; wait up to its timeout, stopping it at a limit; then kill
/// whatever is left of its process group.
pub(crate) fn run_in_group(mut cmd: Command, inv: &Invocation<'_>) -> Result<Outcome, Error> {
    let log = inv.log;
    let log_err = |source| Error::Log {
        path: log.to_path_buf(),
        source,
    };
    let out = File::create(log).map_err(log_err)?;
    let err = out.try_clone().map_err(log_err)?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    let mask = inv.umask as libc::mode_t;
    let processes = ProcessGuard::new(inv.limits.processes);
    let setup = processes.child_setup();
    let max_file = inv.limits.disk;
    // SAFETY: setsid, umask, write and setrlimit are async-signal-safe and touch only the
    // child; `setup` holds no allocation.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::umask(mask);
            setup.apply(max_file)
        });
    }
    let program = cmd.get_program().to_string_lossy().into_owned();
    crate::interrupt::check()?;
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|source| Error::Spawn { program, source })?;
    let group = libc::pid_t::try_from(child.id()).expect("pids fit in pid_t");
    // From here a signal kills the group at once; the loop below notices it too, which covers
    // a signal that came between the spawn and this line.
    let watched = crate::interrupt::BuildGroup::watch(group);
    // A recipe's timeout is at most 7 days; a bigger one from elsewhere waits forever.
    let deadline = start
        .checked_add(inv.timeout)
        .unwrap_or(start + Duration::from_secs(365 * 86_400));
    let mut disk = DiskWatch::new(inv.limits.disk);
    let mut pause = Duration::from_millis(1);
    let stop = |why: Termination, child: &mut std::process::Child| {
        kill_group(group);
        child.wait().map_err(Error::Wait).map(|_| why)
    };
    let termination = loop {
        match child.try_wait().map_err(Error::Wait)? {
            Some(status) => {
                // A build that failed because a fork was refused failed at the limit. A write
                // past the file size limit cuts the file at the limit (and kills the writer
                // with SIGXFSZ, which a shell may shrug off): a tree at the limit, or a build
                // that died of SIGXFSZ, reached it, whatever the exit status says.
                if !status.success() && processes.was_hit() {
                    break Termination::ProcessLimit(inv.limits.processes);
                }
                let xfsz = status.signal() == Some(libc::SIGXFSZ)
                    || status.code() == Some(128 + libc::SIGXFSZ);
                if xfsz || disk_usage(inv.build_dir) >= inv.limits.disk {
                    break Termination::DiskLimit(inv.limits.disk);
                }
                break match (status.code(), status.signal()) {
                    (Some(code), _) => Termination::Exited(code),
                    (None, Some(sig)) => Termination::Signalled(sig),
                    (None, None) => Termination::Exited(-1),
                };
            }
            None if crate::interrupt::received().is_some() => {
                break stop(Termination::Signalled(libc::SIGKILL), &mut child)?;
            }
            None if Instant::now() >= deadline => break stop(Termination::TimedOut, &mut child)?,
            None if processes.was_hit() => {
                break stop(Termination::ProcessLimit(inv.limits.processes), &mut child)?;
            }
            None if disk.is_over(inv.build_dir) => {
                break stop(Termination::DiskLimit(inv.limits.disk), &mut child)?;
            }
            None => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(50));
            }
        }
    };
    kill_group(group);
    drop(watched);
    let limits = Applied {
        max_processes: inv.limits.processes,
        process_bound: processes.bound(),
        max_disk_bytes: inv.limits.disk,
    };
    drop(processes);
    // A build killed by an interrupt did not fail: the run was stopped.
    crate::interrupt::check()?;
    Ok(Outcome {
        termination,
        elapsed: start.elapsed(),
        limits,
    })
}

fn kill_group(group: libc::pid_t) {
    // SAFETY: signalling a process group we created; ESRCH (already gone) is fine.
    unsafe {
        libc::kill(-group, libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn run(argv: &[&str], timeout: Duration) -> (Outcome, String) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_owned()).collect();
        let mut env = BTreeMap::new();
        env.insert("PATH".to_owned(), "/usr/bin:/bin".to_owned());
        env.insert("ONLY".to_owned(), "this".to_owned());
        let inv = Invocation {
            argv: &argv,
            env: &env,
            env_reversed: false,
            build_dir: dir.path(),
            workdir: None,
            log: &log,
            timeout,
            umask: 0o027,
            limits: crate::sandbox::limits::Limits::default(),
        };
        let outcome = Host.run(&inv).unwrap();
        (outcome, std::fs::read_to_string(&log).unwrap())
    }

    #[test]
    fn environment_is_exactly_the_one_given() {
        let (outcome, log) = run(&["sh", "-c", "env | sort; umask"], Duration::from_secs(10));
        assert!(outcome.is_success());
        let lines: Vec<&str> = log.lines().collect();
        // `sh` itself adds PWD; nothing of ours leaks through.
        assert!(lines.contains(&"ONLY=this"), "{log}");
        assert!(!log.contains("HOME="), "{log}");
        assert_eq!(lines.last(), Some(&"0027"));
    }

    #[test]
    fn failure_and_signal_are_reported() {
        let (outcome, _) = run(&["sh", "-c", "exit 3"], Duration::from_secs(10));
        assert_eq!(outcome.termination, Termination::Exited(3));
        let (outcome, _) = run(&["sh", "-c", "kill -TERM $$"], Duration::from_secs(10));
        assert_eq!(outcome.termination, Termination::Signalled(libc::SIGTERM));
    }

    fn run_limited(script: &str, limits: crate::sandbox::limits::Limits) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let argv = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
        let env = [("PATH".to_owned(), "/usr/bin:/bin".to_owned())].into();
        Host.run(&Invocation {
            argv: &argv,
            env: &env,
            env_reversed: false,
            build_dir: dir.path(),
            workdir: None,
            log: &dir.path().join("log"),
            timeout: Duration::from_secs(60),
            umask: 0o022,
            limits,
        })
        .unwrap()
    }

    #[test]
    fn too_many_processes_stop_the_build_at_the_limit() {
        let limits = crate::sandbox::limits::Limits {
            processes: 24,
            ..Default::default()
        };
        // Bounded, so that a broken limit slows the test instead of the machine.
        let outcome = run_limited("for i in $(seq 1 200); do sleep 20 & done; wait", limits);
        assert_eq!(outcome.termination, Termination::ProcessLimit(24));
        assert!(outcome.elapsed < Duration::from_secs(15), "{outcome:?}");
        let fine = run_limited("for i in $(seq 1 8); do sleep 0.1 & done; wait", limits);
        assert!(fine.is_success(), "{fine:?}");
    }

    #[test]
    fn a_tree_past_the_disk_limit_stops_the_build() {
        let limits = crate::sandbox::limits::Limits {
            disk: 8 << 20,
            ..Default::default()
        };
        // One big file: the file size limit stops it at once.
        let one = run_limited("head -c 64M /dev/zero > big", limits);
        assert_eq!(one.termination, Termination::DiskLimit(8 << 20), "{one:?}");
        // Many small ones: the tree is measured while the build runs.
        // A shell that carries on after its writer was cut off still reached the limit.
        let shrugged = run_limited("head -c 64M /dev/zero > big; echo done", limits);
        assert_eq!(
            shrugged.termination,
            Termination::DiskLimit(8 << 20),
            "{shrugged:?}"
        );
        let many = run_limited(
            "for i in $(seq 1 64); do head -c 1M /dev/zero > f$i; sync f$i; sleep 0.05; done",
            limits,
        );
        assert_eq!(
            many.termination,
            Termination::DiskLimit(8 << 20),
            "{many:?}"
        );
        assert!(many.elapsed < Duration::from_secs(3), "{many:?}");
        let fine = run_limited("head -c 1M /dev/zero > small", limits);
        assert!(fine.is_success(), "{fine:?}");
    }

    #[test]
    fn timeout_kills_the_whole_tree() {
        let (outcome, _) = run(
            &["sh", "-c", "sleep 30 & sleep 30"],
            Duration::from_millis(300),
        );
        assert_eq!(outcome.termination, Termination::TimedOut);
        assert!(outcome.elapsed < Duration::from_secs(5));
    }
}
