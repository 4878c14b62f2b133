//! A real scheduler, run for real (issue 11 item 3): a single-node Slurm cluster from Debian's
//! `slurm-wlm` and `munge`, started here, runs `examples/ci/slurm-verify.sbatch` as a job array
//! verifying six releases of the demo in the bubblewrap sandbox (one of them tampered), and
//! `reprove report` over the attestations gives the fleet table: five passed, one failed.
//!
//! Every daemon is started in its own process group and stopped by a guard when the test ends,
//! also when it fails; every wait is bounded. The fleet made here is shared with
//! `tests/cli/report.rs` ([`fleet`]), so the releases are verified once per test run.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::support::{tamper, Demo, BUNDLE};

/// The releases of the fleet: versions of the demo; the one at [`TAMPERED`] ships a patched
/// image.
pub const VERSIONS: [&str; 6] = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4", "1.0.5"];
pub const TAMPERED: usize = 3;

/// What the Slurm run left: the attestations (`atts/release-N.intoto.jsonl`), the trusted key
/// (`vendor.pub`, its private half `vendor`) and an unrelated one (`other.pub`), and sbatch's
/// exit code.
pub struct Fleet {
    /// Keeps the demo's folder (and so the fleet) alive for the whole test run.
    pub demo: Demo,
    pub sbatch_status: Option<i32>,
}

/// The fleet, made once per test run by a real Slurm job array.
pub fn fleet() -> &'static Fleet {
    static FLEET: OnceLock<Fleet> = OnceLock::new();
    FLEET.get_or_init(|| {
        let fleet = run_fleet();
        // A static is never dropped, and so neither is the demo's temporary folder: it is
        // removed when the test binary exits.
        FLEET_DIR.get_or_init(|| fleet.demo.env.root().to_owned());
        // SAFETY: registers a plain `extern "C" fn` that takes nothing; called once.
        unsafe { libc::atexit(remove_fleet_dir) };
        fleet
    })
}

static FLEET_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_fleet_dir() {
    if let Some(dir) = FLEET_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A daemon we started, stopped when dropped: SIGTERM to its process group, a bounded wait,
/// then SIGKILL.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn start(name: &'static str, cmd: &mut Command, log: &Path) -> Daemon {
        let out = std::fs::File::create(log).unwrap();
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} does not start (scripts/test.sh installs it): {e}"));
        Daemon { name, child }
    }

    fn signal(&self, signal: i32) {
        let group = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) with a process group we created; no memory is involved.
        unsafe { libc::kill(-group, signal) };
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.is_running() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// A single-node cluster: munged, slurmctld and slurmd, each with its state in `dir`. When
/// dropped, its jobs are cancelled first, then the daemons stop: slurmd, slurmctld, munged.
struct Cluster {
    conf: PathBuf,
    dir: PathBuf,
    slurmd: Option<Daemon>,
    slurmctld: Option<Daemon>,
    munged: Option<Daemon>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.slurmctld.is_some() {
            // Job steps run under slurmstepd, outside slurmd's process group: cancel them first.
            let _ = self
                .command("timeout")
                .args(["20", "scancel", "--full", "--partition=test"])
                .output();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline && !self.queue_is_empty() {
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        drop(self.slurmd.take());
        drop(self.slurmctld.take());
        drop(self.munged.take());
    }
}

impl Cluster {
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.env("SLURM_CONF", &self.conf);
        cmd
    }

    fn queue_is_empty(&self) -> bool {
        self.command("timeout")
            .args(["10", "squeue", "--noheader"])
            .output()
            .is_ok_and(|o| o.status.success() && o.stdout.is_empty())
    }

    fn logs(&self) -> String {
        let mut text = String::new();
        for name in ["munged.log", "slurmctld.log", "slurmd.log"] {
            let log = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text.push_str(&format!("--- {name} (last lines)\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }

    /// Start munged, slurmctld and slurmd, and wait (bounded) until the node is idle.
    fn start(dir: &Path) -> Cluster {
        for sub in ["munge", "run", "state", "spool"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let key = dir.join("munge/munge.key");
        let mut secret = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 1024),
            &mut secret,
        )
        .unwrap();
        std::fs::write(&key, secret).unwrap();
        set_mode(&dir.join("munge"), 0o700);
        set_mode(&key, 0o400);
        let socket = dir.join("run/munge.socket");
        let [ctld_port, d_port] = free_ports();
        let conf = dir.join("slurm.conf");
        let p = |rel: &str| dir.join(rel).display().to_string();
        std::fs::write(
            &conf,
            format!(
                "ClusterName=reprove-test\nSlurmctldHost=localhost\nSlurmUser=root\n\
                 SlurmdUser=root\nSlurmctldPort={ctld_port}\nSlurmdPort={d_port}\n\
                 AuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={socket}\n\
                 StateSaveLocation={state}\nSlurmdSpoolDir={spool}\n\
                 SlurmctldPidFile={ctld_pid}\nSlurmdPidFile={d_pid}\n\
                 SlurmctldLogFile={ctld_log}\nSlurmdLogFile={d_log}\n\
                 ProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
                 SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\n\
                 JobAcctGatherType=jobacct_gather/none\n\
                 AccountingStorageType=accounting_storage/none\nMpiDefault=none\n\
                 ReturnToService=2\nSlurmdTimeout=30\n\
                 NodeName=localhost CPUs=2 State=UNKNOWN\n\
                 PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
                socket = socket.display(),
                state = p("state"),
                spool = p("spool"),
                ctld_pid = p("run/slurmctld.pid"),
                d_pid = p("run/slurmd.pid"),
                ctld_log = p("slurmctld.log"),
                d_log = p("slurmd.log"),
            ),
        )
        .unwrap();
        // Slurm 22.05 knows no `CgroupPlugin=disabled`; with `proctrack/linuxproc` and
        // `task/none` no cgroup is made, and autodetect only reads which version is mounted.
        std::fs::write(dir.join("cgroup.conf"), "CgroupPlugin=autodetect\n").unwrap();

        let mut cluster = Cluster {
            conf: conf.clone(),
            dir: dir.to_owned(),
            slurmd: None,
            slurmctld: None,
            munged: None,
        };
        cluster.munged = Some(Daemon::start(
            "munged",
            Command::new("munged")
                .arg("--foreground")
                .arg(format!("--socket={}", socket.display()))
                .arg(format!("--key-file={}", key.display()))
                .arg(format!("--log-file={}", p("munged.log")))
                .arg(format!("--pid-file={}", p("run/munged.pid")))
                .arg(format!("--seed-file={}", p("munge/munged.seed"))),
            &dir.join("munged.out"),
        ));
        cluster.wait_for("the munge socket", Duration::from_secs(30), |_| {
            socket.exists()
        });
        cluster.slurmctld = Some(Daemon::start(
            "slurmctld",
            Command::new("slurmctld").arg("-D").arg("-f").arg(&conf),
            &dir.join("slurmctld.out"),
        ));
        cluster.slurmd = Some(Daemon::start(
            "slurmd",
            Command::new("slurmd")
                .args(["-D", "-N", "localhost", "-f"])
                .arg(&conf),
            &dir.join("slurmd.out"),
        ));
        cluster.wait_for("the node to be idle", Duration::from_secs(90), |c| {
            c.command("timeout")
                .args(["10", "sinfo", "--noheader", "--format=%T"])
                .output()
                .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "idle")
        });
        cluster
    }

    fn wait_for(&mut self, what: &str, limit: Duration, mut ready: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if ready(self) {
                return;
            }
            let exited = [&mut self.munged, &mut self.slurmctld, &mut self.slurmd]
                .into_iter()
                .flatten()
                .find_map(|d| (!d.is_running()).then_some(d.name));
            if let Some(name) = exited {
                panic!("{name} exited\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {limit:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Two TCP ports that were free a moment ago (bound, then released).
fn free_ports() -> [u16; 2] {
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    [
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    ]
}

/// Six releases from one locked demo (each its own recipe, lock, escrow and shipped bundle),
/// verified by a Slurm job array, one task per release.
fn run_fleet() -> Fleet {
    let demo = Demo::locked("sandbox");
    let env = &demo.env;
    env.cmd(["key", "generate", "--out", "vendor"])
        .assert()
        .success();
    env.cmd(["key", "generate", "--out", "other"])
        .assert()
        .success();
    let recipe = demo.recipe();
    let mut manifest = String::from("# NAME RECIPE SHIPPED\n");
    for (i, version) in VERSIONS.iter().enumerate() {
        if i == TAMPERED {
            tamper(&demo, |img| img[0x40] ^= 0xff);
        }
        let dir = env.path(&format!("releases/r{i}"));
        std::fs::create_dir_all(dir.join("escrow")).unwrap();
        std::fs::create_dir_all(dir.join("shipped")).unwrap();
        std::fs::write(
            dir.join("reprove.toml"),
            recipe.replacen(
                "version = \"1.0.0\"",
                &format!("version = \"{version}\""),
                1,
            ),
        )
        .unwrap();
        std::fs::copy(env.path("operator/reprove.lock"), dir.join("reprove.lock")).unwrap();
        let escrow = "escrow/acme-router-fw-1.0.0.tar.gz";
        std::fs::copy(env.path(&format!("operator/{escrow}")), dir.join(escrow)).unwrap();
        let shipped = dir.join("shipped/acme-router-fw-1.0.0.tar.gz");
        std::fs::copy(env.path(BUNDLE), &shipped).unwrap();
        if i == TAMPERED {
            // The releases after it ship the vendor's own bundle again (release 0 kept it).
            std::fs::copy(
                env.path("releases/r0/shipped/acme-router-fw-1.0.0.tar.gz"),
                env.path(BUNDLE),
            )
            .unwrap();
        }
        manifest.push_str(&format!(
            "release-{version} {} {}\n",
            dir.join("reprove.toml").display(),
            shipped.display()
        ));
    }
    env.write("releases.txt", &manifest);

    let cluster = Cluster::start(&env.path("slurm"));
    let reprove = assert_cmd::cargo::cargo_bin("reprove");
    let path = format!(
        "{}:/usr/sbin:/usr/bin:/sbin:/bin",
        reprove.parent().unwrap().display()
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ci/slurm-verify.sbatch");
    let out = cluster
        .command("timeout")
        .arg("900")
        .arg("sbatch")
        .arg(format!("--array=0-{}", VERSIONS.len() - 1))
        .arg("--wait")
        .arg(format!("--chdir={}", env.root().display()))
        .arg(format!(
            "--output={}/slurm/task-%a.out",
            env.root().display()
        ))
        .arg(&script)
        .env("PATH", &path)
        .env("RELEASES", env.path("releases.txt"))
        .env("OUT", env.path("atts"))
        .env("REPROVE_SIGN_KEY", env.path("vendor"))
        .env("REPROVE_VERIFIER_ID", "https://lab.example/reprove")
        .env("REPROVE_CACHE_DIR", env.path("cache"))
        .env("NO_COLOR", "1")
        .output()
        .expect("sbatch runs (scripts/test.sh installs slurm-wlm)");
    let mut tasks = String::new();
    for i in 0..VERSIONS.len() {
        let log = std::fs::read_to_string(env.path(&format!("slurm/task-{i}.out")));
        tasks.push_str(&format!("--- task {i}\n{}\n", log.unwrap_or_default()));
    }
    assert_ne!(
        out.status.code(),
        Some(124),
        "the job array did not finish within 900 s\n{tasks}{}",
        cluster.logs()
    );
    for (i, version) in VERSIONS.iter().enumerate() {
        assert!(
            env.path(&format!("atts/release-{version}.intoto.jsonl"))
                .is_file(),
            "task {i} wrote no attestation: {}\n{tasks}{}",
            String::from_utf8_lossy(&out.stderr),
            cluster.logs()
        );
    }
    drop(cluster);
    Fleet {
        sbatch_status: out.status.code(),
        demo,
    }
}

#[test]
fn a_slurm_job_array_verifies_six_releases_and_report_names_the_tampered_one() {
    let fleet = fleet();
    // sbatch --wait exits with the highest exit code of the array's tasks: verify's 1.
    assert_eq!(fleet.sbatch_status, Some(1));
    let out = fleet
        .demo
        .env
        .cmd(["report", "atts", "--key", "vendor.pub"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<Vec<&str>> = text
        .lines()
        .skip(1)
        .take(VERSIONS.len())
        .map(|l| l.split_whitespace().collect())
        .collect();
    for (i, (row, version)) in rows.iter().zip(VERSIONS).enumerate() {
        let (status, verdict) = if i == TAMPERED {
            ("failed", "different")
        } else {
            ("passed", "identical")
        };
        let file = format!("atts/release-{version}.intoto.jsonl");
        assert_eq!(
            row[..4],
            [status, "acme-router-fw", version, verdict],
            "{text}"
        );
        assert_eq!(row.last(), Some(&file.as_str()), "{text}");
        assert!(row.contains(&"bwrap"), "isolation: {text}");
    }
    assert!(
        text.ends_with("\n6 attestations: 5 passed, 1 failed, 0 rejected, 0 unreadable\n"),
        "{text}"
    );
    // The fleet view itself, for whoever runs this with `--nocapture`.
    #[allow(clippy::print_stderr)]
    {
        eprint!("{text}");
    }
}
