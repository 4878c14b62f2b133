//! The CI examples (`examples/ci/`) against their published schemas (issue 11 item 3): the
//! GitHub Actions workflow and the GitLab pipeline with `check-jsonschema` and its bundled
//! `vendor.github-workflows` and `vendor.gitlab-ci` schemas, the Kubernetes Indexed Job with
//! `kubernetes-validate --strict` against Kubernetes 1.33 (both from `PyPI`, pinned). The
//! validators run with the network cut off (bubblewrap's `--unshare-net`), so the schemas
//! checked are the ones the pinned packages ship. Each example is also broken once, to show the
//! validator catches it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Names the venv; change it with `tests/ci_examples/requirements.txt`.
const VALIDATORS: &str = "check-jsonschema0.39.0-kubernetes-validate1.37.0";

/// The Kubernetes version the manifest is validated against (one `kubernetes-validate` ships).
const KUBERNETES: &str = "1.33.0";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The venv's `bin/`, with the pinned validators installed; built once under target/tmp.
/// Panics (never skips) when python3 or its venv module is missing.
fn validators() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let python = crate::support::python_venv(
            &format!("ci-validators-{VALIDATORS}"),
            &root().join("tests/ci_examples/requirements.txt"),
        );
        python.parent().unwrap().to_path_buf()
    })
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("failed to run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a validator (a Python module of the venv: its scripts' `#!` lines name the staging
/// folder the venv was built in) on `file` without a network; its exit code and output.
fn validate(module: &str, args: &[&str], file: &Path) -> (Option<i32>, String) {
    let out = Command::new("bwrap")
        .args(["--dev-bind", "/", "/", "--unshare-net", "--"])
        .arg(validators().join("python"))
        .args(["-m", module])
        .args(args)
        .arg(file)
        .output()
        .expect("bwrap runs (scripts/test.sh installs bubblewrap)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// An example, its validator and arguments, a line to break, how, and the complaint then.
type Case<'a> = (&'a str, &'a str, Vec<&'a str>, &'a str, &'a str, &'a str);

#[test]
fn ci_examples_hold_against_their_published_schemas_offline() {
    let broken = tempfile::tempdir().unwrap();
    let cases: [Case; 3] = [
        (
            "github-actions.yml",
            "check_jsonschema",
            vec!["--builtin-schema", "vendor.github-workflows"],
            "    steps:",
            "    stepz:",
            "'stepz' was unexpected",
        ),
        (
            "gitlab-ci.yml",
            "check_jsonschema",
            vec!["--builtin-schema", "vendor.gitlab-ci"],
            "  script:",
            "  scriptz:",
            "'scriptz' was unexpected",
        ),
        (
            "kubernetes-indexed-job.yaml",
            "kubernetes_validate",
            vec!["--strict", "-k", KUBERNETES],
            "completionMode: Indexed",
            "completionMod: Indexed",
            "'completionMod' was unexpected",
        ),
    ];
    for (name, program, args, good, bad, complaint) in cases {
        let example = root().join("examples/ci").join(name);
        let (code, text) = validate(program, &args, &example);
        assert_eq!(code, Some(0), "{name}: {text}");
        if program == "kubernetes_validate" {
            // Both documents, each against the version asked for.
            assert_eq!(text.matches("passed for resource").count(), 2, "{text}");
            assert!(text.contains(&format!("against version {}", &KUBERNETES[..4])));
        }
        let source = std::fs::read_to_string(&example).unwrap();
        assert!(source.contains(good), "{name}: no `{good}` to break");
        let copy = broken.path().join(name);
        std::fs::write(&copy, source.replace(good, bad)).unwrap();
        let (code, text) = validate(program, &args, &copy);
        assert_eq!(code, Some(1), "{name} broken: {text}");
        assert!(text.contains(complaint), "{name} broken: {text}");
    }
    // The Slurm script (run for real in tests/cli/slurm.rs) at least parses as sh everywhere.
    run(
        Command::new("sh")
            .arg("-n")
            .arg(root().join("examples/ci/slurm-verify.sbatch")),
        "sh -n examples/ci/slurm-verify.sbatch",
    );
}
