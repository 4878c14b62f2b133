//! `[verify] vary` and the second rebuild's variations, end to end: the real binary, real
//! bubblewrap, the real libfaketime. See issue 9, item 6.

use serde_json::Value;

use crate::support::TestEnv;

/// Seconds in 300 days: the varied clock stands 400 days on, so a build that sees more than
/// this much past the real time saw the varied clock.
const DAYS_300: i64 = 300 * 86_400;

/// An escrow whose build does what `dpkg-source -x` does with file times: `utime(undef,
/// undef, …)` from Perl (the call libfaketime 0.9.10 broke), `touch -d`, and `tar -x` keeping
/// the members' mtimes. The artifact holds the times it set, so two rebuilds agree exactly
/// when every time set was kept; `out/now` (no artifact) holds the clock the build saw.
const BUILD: &str = r#"set -e
mkdir -p out in
echo data > in/member
touch -d @1600000000 in/member
tar --format=ustar -cf in.tar -C in member
rm -rf in && mkdir in
tar -xf in.tar -C in
perl -e 'open my $f, ">", "out/stamp" or die; close $f; utime(undef, undef, "out/stamp") or die "utime: $!\n"'
touch -d @1500000000 out/stamp
stat -c '%n %Y' in/member out/stamp > out/times
date +%s > out/now
"#;

const TOOLS: &str = r#"["sh", "mkdir", "echo", "touch", "tar", "rm", "perl", "stat", "date"]"#;

/// A recipe for [`BUILD`] with `extra` appended, and its escrow; not yet locked.
fn times_recipe(isolation: &str, extra: &str) -> TestEnv {
    let env = TestEnv::new().file("escrow/build.sh", BUILD);
    let out = env.cmd(["hash", "--json", "escrow"]).output().unwrap();
    let hashed: crate::json::Hash = crate::json::parse(&out);
    let digest = hashed.entries[0].sha256.clone();
    env.write(
        "reprove.toml",
        format!(
            r#"[package]
name = "times"
version = "1"

[source]
path = "escrow"
digest = "{digest}"

[toolchain]
tools = {TOOLS}
isolation = "{isolation}"

[build]
command = ["sh", "build.sh"]
env = {{ SOURCE_DATE_EPOCH = "1700000000" }}

[[artifact]]
path = "out/times"
{extra}"#
        ),
    );
    env.write(
        "shipped/times",
        "in/member 1600000000\nout/stamp 1500000000\n",
    );
    env
}

/// `verify --rebuilds 2 --json` with the work folder kept in `work/`; the JSON and the code.
fn verify_twice(env: &TestEnv, args: &[&str]) -> (Value, Option<i32>, String) {
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--out",
            "att.intoto.jsonl",
        ])
        .args([
            "--rebuilds",
            "2",
            "--work-dir",
            "work",
            "--shipped",
            "shipped/times",
        ])
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = if args.contains(&"--json") {
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
    } else {
        Value::String(stdout)
    };
    (v, out.status.code(), stderr)
}

fn lock(env: &TestEnv) {
    env.cmd(["lock", "reprove.toml"]).assert().success();
}

/// The clock the varied rebuild's build saw, read from its tree.
fn varied_clock(env: &TestEnv) -> i64 {
    let tree = env.path("work/rebuild-2/a/much/deeper/build/folder");
    let tree = if tree.is_dir() {
        tree
    } else {
        env.path("work/rebuild-2/tree")
    };
    let now = std::fs::read_to_string(tree.join("out/now")).unwrap();
    now.trim().parse().unwrap()
}

fn real_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_secs()).unwrap()
}

/// The clock variation keeps `utime()` working and every time a build sets as set, and
/// really moves the clock, on the host and in the lock's view. Under the variation as it was
/// (libfaketime with `FAKETIME=+400d`), Perl's `utime(undef, undef, …)` failed with `EINVAL`
/// on the host, so rebuild 2 alone failed; in the sandbox the library was not in the lock's
/// view, the loader ignored the preload and the clock did not move at all, while the
/// attestation said it had.
#[test]
fn the_clock_variation_keeps_utime_working_and_moves_the_clock() {
    for isolation in ["none", "sandbox"] {
        let env = times_recipe(isolation, "");
        lock(&env);
        let (v, code, stderr) = verify_twice(&env, &["--json"]);
        let log2 = std::fs::read_to_string(env.path("work/rebuild-2/build.log")).unwrap();
        assert_eq!(code, Some(0), "{isolation}: {stderr}\n{log2}\n{v}");
        assert_eq!(v["verdict"], "identical", "{isolation}: {v}");
        let varied = &v["rebuilds"][1]["variation"];
        assert_eq!(
            varied["varied"],
            serde_json::json!(["build-dir", "umask", "env-order", "clock"]),
            "{isolation}: {varied}"
        );
        assert_eq!(varied["clock_shift_days"], 400);
        assert!(!log2.contains("cannot be preloaded"), "{isolation}: {log2}");
        let seen = varied_clock(&env);
        assert!(
            seen > real_now() + DAYS_300,
            "{isolation}: the varied build saw {seen}, not a clock 400 days on"
        );
        assert_eq!(
            varied["clock_stopped_at"].as_i64(),
            Some(seen),
            "{isolation}: the clock is recorded as the build saw it"
        );
    }
}

/// `[verify] vary` chooses what rebuild 2 varies, the attestation records the choice, and the
/// text says whether the rebuilds agreed.
#[test]
fn vary_chooses_what_the_second_rebuild_varies() {
    let env = times_recipe("sandbox", "\n[verify]\nvary = [\"umask\"]\n");
    lock(&env);
    let (v, code, stderr) = verify_twice(&env, &["--json"]);
    assert_eq!(code, Some(0), "{stderr}");
    let varied = &v["rebuilds"][1]["variation"];
    assert_eq!(varied["varied"], serde_json::json!(["umask"]), "{varied}");
    assert_eq!(varied["umask"], 0o077);
    assert_eq!(varied["nested_build_dir"], false);
    assert_eq!(varied["env_reversed"], false);
    assert!(varied.get("clock_shift_days").is_none(), "{varied}");
    assert!(v["rebuilds"][1]["environment"].get("FAKETIME").is_none());
    assert!(
        varied_clock(&env) < real_now() + 60,
        "the clock is not varied"
    );
    assert_eq!(
        v["rebuilds"][0]["variation"]["varied"],
        serde_json::json!([])
    );

    std::fs::remove_dir_all(env.path("work")).unwrap();
    let (text, code, _) = verify_twice(&env, &[]);
    assert_eq!(code, Some(0));
    let text = text.as_str().unwrap();
    assert!(
        text.contains("the 2 rebuilds agree: every artifact came out the same (`umask`: 077)"),
        "{text}"
    );
}

/// A build that trips on a variation: rebuild 1 passes, rebuild 2 fails, and the report names
/// the variations applied and the `vary` that leaves the likely one out; with it, the
/// verification passes.
#[test]
fn a_variation_that_breaks_the_build_is_named_with_the_vary_that_leaves_it_out() {
    // The build refuses a clock more than 300 days past the real one (read from outside the
    // preload: the escrow carries the real time the test started).
    let env = times_recipe("sandbox", "");
    let limit = real_now() + DAYS_300;
    env.write(
        "escrow/build.sh",
        format!("[ \"$(date +%s)\" -lt {limit} ] || {{ echo 'clock too far on' >&2; exit 4; }}\n{BUILD}"),
    );
    let out = env.cmd(["hash", "--json", "escrow"]).output().unwrap();
    let hashed: crate::json::Hash = crate::json::parse(&out);
    let digest = &hashed.entries[0].sha256;
    let recipe = std::fs::read_to_string(env.path("reprove.toml")).unwrap();
    let recipe: String = recipe
        .lines()
        .map(|l| {
            if l.starts_with("digest = ") {
                format!("digest = \"{digest}\"\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    env.write("reprove.toml", &recipe);
    lock(&env);
    let (text, code, _) = verify_twice(&env, &[]);
    assert_eq!(code, Some(1));
    let text = text.as_str().unwrap();
    assert!(
        text.contains(
            "build-failed: rebuild 2 (`build-dir`: a deeper build folder, `umask`: 077, \
             `env-order`: the environment reversed, `clock`: the clock 400 days on, stopped) \
             failed: exited 4"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "hint: if the build cannot stand one of the variations applied, leave it out in \
             the recipe; without `clock`: `[verify] vary = [\"build-dir\", \"umask\", \
             \"env-order\"]`"
        ),
        "{text}"
    );
    assert!(!text.contains("rebuilds agree"), "{text}");

    env.write(
        "reprove.toml",
        recipe + "\n[verify]\nvary = [\"build-dir\", \"umask\", \"env-order\"]\n",
    );
    std::fs::remove_dir_all(env.path("work")).unwrap();
    let (v, code, stderr) = verify_twice(&env, &["--json"]);
    assert_eq!(code, Some(0), "{stderr}{v}");
    assert_eq!(v["verdict"], "identical");
}

/// A recipe that names `clock` needs libfaketime in the lock: an older lock without it is one
/// clear error before anything is built, not a clock that silently did not move.
#[test]
fn naming_clock_without_libfaketime_in_the_lock_is_an_error() {
    let env = times_recipe("sandbox", "\n[verify]\nvary = [\"clock\"]\n");
    env.cmd(["lock", "--no-trace", "reprove.toml"])
        .assert()
        .success();
    let lock_path = env.path("reprove.lock");
    let lock = std::fs::read_to_string(&lock_path).unwrap();
    assert!(lock.contains("faketime/libfaketime.so.1"), "{lock}");
    // The lock as an older reprove wrote it: no libfaketime pin.
    let mut kept = Vec::new();
    let mut lines = lock.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "[[pin]]"
            && lines
                .peek()
                .is_some_and(|l| l.contains("faketime/libfaketime.so.1"))
        {
            lines.next();
            while lines.peek().is_some_and(|l| !l.starts_with('[')) {
                lines.next();
            }
            continue;
        }
        kept.push(line);
    }
    std::fs::write(&lock_path, kept.join("\n") + "\n").unwrap();
    let (_, code, stderr) = verify_twice(&env, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("names `clock`, but the lock does not pin libfaketime"),
        "{stderr}"
    );
    assert!(!env.path("work/rebuild-1").exists(), "nothing is built");
}
