//! Real firmware from Debian (bookworm): `SeaBIOS` and Syslinux rebuilt end to end from their
//! source packages, as `examples/seabios-acpi/`, `examples/seabios-vgabios/` and
//! `examples/syslinux-mbr/` write the recipes, and
//! Debian's own firmware binaries (a `SeaBIOS` ROM, U-Boot, OVMF) as `diff` inputs with a known
//! change. See issue 9, item 7.
//!
//! The packages are fetched once per version with apt (`apt-get source --download-only`,
//! `apt-get download`) into `target/debian-cache/`, like the hermetic root of
//! `tests/cli/sandbox.rs`; `scripts/test.sh` installs the build dependencies and a `deb-src`
//! source when apt has none.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{run_ok, TestEnv};

/// The `SeaBIOS` Debian shipped in bookworm: built with `gcc (Debian 12.2.0-14)`.
const SEABIOS: &str = "1.16.2-1";

/// `target/debian-cache/<what>` for one package at one version, filled by `fetch` once.
fn cached(what: &str, fetch: impl FnOnce(&Path)) -> PathBuf {
    // Tests of one process fetch one at a time: the temporary folder is per process, and two
    // tests fetching into it at once (SeaBIOS's source, for two recipes) broke each other's
    // download.
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/debian-cache")
        .join(what);
    let done = dir.join(".complete");
    let _fetching = FETCHING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !done.exists() {
        let tmp = dir.with_extension(format!("tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        fetch(&tmp);
        std::fs::write(tmp.join(".complete"), "").unwrap();
        // A folder left by an interrupted run goes; one another process completed stays.
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        // Another process may have won the race: its copy is as good as ours.
        if std::fs::rename(&tmp, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    dir
}

/// A binary package `name=version`, unpacked (`dpkg-deb -x`).
fn debian_binary(name: &str, version: &str) -> PathBuf {
    cached(&format!("{name}_{version}"), |dir| {
        run_ok(
            Command::new("apt-get")
                .args(["download", "-qq", &format!("{name}={version}")])
                .current_dir(dir),
        );
        let deb = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .expect("apt-get download wrote a .deb");
        run_ok(
            Command::new("dpkg-deb")
                .arg("-x")
                .arg(&deb)
                .arg(dir.join("root")),
        );
    })
    .join("root")
}

/// The source package `seabios=SEABIOS` as Debian publishes it (`.dsc` and tarballs).
fn seabios_source() -> PathBuf {
    debian_source("seabios", SEABIOS)
}

/// Syslinux as bookworm has it; its boot records were built in 2020, with gcc 10.
const SYSLINUX: &str = "3:6.04~git20190206.bf6db5b4+dfsg1-3";

/// The source package `name=version` as Debian publishes it (`.dsc` and tarballs).
fn debian_source(name: &str, version: &str) -> PathBuf {
    cached(
        &format!("{name}-source_{}", version.replace(':', "_")),
        |dir| {
            let out = Command::new("apt-get")
                .args(["source", "--download-only", "-qq"])
                .arg(format!("{name}={version}"))
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "apt-get source failed (apt needs a deb-src source: scripts/test.sh adds one): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        },
    )
}

/// An operator's folder: the escrow (the files of the source package in `source`), the
/// recipe from `examples/NAME/reprove.toml` with its digest filled in, and an empty
/// `shipped/`.
fn operator(name: &str, source: &Path, prefix: &str) -> TestEnv {
    let env = TestEnv::new();
    let escrow = env.path("escrow");
    std::fs::create_dir_all(&escrow).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_str().unwrap().to_owned();
        if file.starts_with(prefix) {
            std::fs::copy(&path, escrow.join(file)).unwrap();
        }
    }
    let out = env.cmd(["hash", "--json", "escrow"]).output().unwrap();
    let hashed: crate::json::Hash = crate::json::parse(&out);
    let digest = &hashed.entries[0].sha256;
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let recipe = std::fs::read_to_string(examples.join(name).join("reprove.toml")).unwrap();
    env.write("reprove.toml", recipe.replace("sha256:REPLACE_ME", digest));
    std::fs::create_dir_all(env.path("shipped")).unwrap();
    env
}

/// Syslinux's boot records (a second source package, other than `SeaBIOS`), rebuilt with
/// bookworm's toolchain of today, twice, the second varied: the bytes Debian shipped in 2020.
#[test]
fn syslinux_boot_records_rebuild_identical_to_debians() {
    let env = operator(
        "syslinux-mbr",
        &debian_source("syslinux", SYSLINUX),
        "syslinux_",
    );
    let records = debian_binary("syslinux-common", SYSLINUX).join("usr/lib/syslinux/mbr");
    for name in ["mbr.bin", "altmbr.bin", "gptmbr.bin"] {
        std::fs::copy(records.join(name), env.path("shipped").join(name)).unwrap();
    }
    env.cmd(["lock", "reprove.toml"]).assert().success();
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--json",
            "--rebuilds",
            "2",
        ])
        .args(["--out", "att.intoto.jsonl", "--shipped", "shipped"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{v}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(v["verdict"], "identical");
    let names: Vec<&str> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mbr.bin", "altmbr.bin", "gptmbr.bin"]);
    assert_eq!(v["rebuilds"].as_array().unwrap().len(), 2);
    assert_eq!(
        v["rebuilds"][1]["variation"]["varied"],
        serde_json::json!(["build-dir", "umask", "env-order", "clock"])
    );
}

/// An operator's folder for a `SeaBIOS` example recipe, with the shipped ROM from Debian's
/// binary package.
fn example(name: &str, shipped: &str) -> TestEnv {
    let env = operator(name, &seabios_source(), "seabios_");
    let rom = debian_binary("seabios", SEABIOS)
        .join("usr/share/seabios")
        .join(shipped);
    std::fs::copy(rom, env.path("shipped").join(shipped)).unwrap();
    env
}

/// `lock`, then `verify --json` with the work folder kept; the JSON, the exit code and stderr.
fn lock_and_verify(env: &TestEnv, shipped: &str) -> (Value, Option<i32>, String) {
    let started = std::time::Instant::now();
    env.cmd(["lock", "reprove.toml"]).assert().success();
    let locked = started.elapsed();
    let out = env
        .cmd([
            "verify",
            "reprove.toml",
            "--unsigned",
            "--json",
            "--work-dir",
            "work",
        ])
        .args(["--out", "att.intoto.jsonl", "--shipped"])
        .arg(format!("shipped/{shipped}"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // What the build costs, in the test's output (`--nocapture`): the suite keeps a budget.
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "{shipped}: lock {:.0} s, verify {:.0} s",
            locked.as_secs_f64(),
            started.elapsed().saturating_sub(locked).as_secs_f64()
        );
    }
    let v = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{stderr}", String::from_utf8_lossy(&out.stdout)));
    (v, out.status.code(), stderr)
}

/// `SeaBIOS`'s ACPI table, compiled by `iasl` from the source package: the bytes Debian
/// ships, whatever the compiler's version (an AML table names only iasl's, unchanged since).
#[test]
fn seabios_acpi_table_rebuilds_identical_to_debians() {
    let env = example("seabios-acpi", "acpi-dsdt.aml");
    let (v, code, stderr) = lock_and_verify(&env, "acpi-dsdt.aml");
    assert_eq!(code, Some(0), "{v}\n{stderr}");
    assert_eq!(v["verdict"], "identical");
    assert_eq!(v["artifacts"][0]["name"], "acpi-dsdt.aml");
    assert_eq!(v["artifacts"][0]["verdict"], "identical");
}

/// `SeaBIOS`'s VGA ROM rebuilt today: Debian's embeds `gcc: (Debian 12.2.0-14) 12.2.0`, this
/// machine's gcc is a later point release, and nothing else differs. The verdict is
/// `different` (the rebuilds agree with each other, so it is not the build's fault) and the
/// cause of the range holding the string is the toolchain, with both versions.
#[test]
fn seabios_vga_rom_differs_by_the_compilers_version_string() {
    let gcc = run_ok(Command::new("gcc").arg("--version"));
    if gcc.contains("(Debian 12.2.0-14) ") {
        // The same compiler Debian used: the ROM comes out identical, which is tested too.
        let env = example("seabios-vgabios", "vgabios-stdvga.bin");
        let (v, code, _) = lock_and_verify(&env, "vgabios-stdvga.bin");
        assert_eq!((code, &v["verdict"]), (Some(0), &Value::from("identical")));
        return;
    }
    let env = example("seabios-vgabios", "vgabios-stdvga.bin");
    let (v, code, stderr) = lock_and_verify(&env, "vgabios-stdvga.bin");
    assert_eq!(code, Some(1), "{v}\n{stderr}");
    assert_eq!(v["verdict"], "different", "{v}");
    let rom = &v["artifacts"][0];
    assert_eq!(rom["verdict"], "different");
    // The varied rebuild agreed with the first: the shipped ROM is the odd one out.
    assert_eq!(v["rebuilds"].as_array().unwrap().len(), 2);
    assert_eq!(rom["rebuilt"][0], rom["rebuilt"][1]);
    assert!(rom.get("nondeterminism").is_none());
    let shipped = std::fs::read(env.path("shipped/vgabios-stdvga.bin")).unwrap();
    let needle = b"gcc: (Debian 12.2.0-14) 12.2.0";
    let at = shipped
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("Debian's ROM names its compiler") as u64;
    // The rebuild's string is 8 bytes longer: an insertion (a shift) where the version
    // words differ, or a range over the string when the ROM's padding kept the size.
    let content = &rom["difference"]["leaves"][0]["content"];
    let at_string = |o: u64, l: u64| o <= at + needle.len() as u64 && at <= o + l;
    let holding = content["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| at_string(r["offset"].as_u64().unwrap(), r["len"].as_u64().unwrap()))
        .or_else(|| {
            content["shifts"].as_array()?.iter().find(|s| {
                let o = s["left_offset"].as_u64().unwrap();
                at_string(o, s["removed"].as_u64().unwrap_or(0).max(1))
            })
        })
        .unwrap_or_else(|| panic!("nothing at the version string (0x{at:x}): {content:#}"));
    assert_eq!(holding["cause"]["kind"], "toolchain", "{holding}");
    let cause = holding["cause"].to_string();
    assert!(
        cause.contains("12.2.0-14") && cause.contains("deb12u"),
        "{cause}"
    );
}

/// A copy of `file` with the byte at `offset` flipped, in `env` as `name`.
fn flipped(env: &TestEnv, file: &Path, offset: usize, name: &str) -> PathBuf {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0x20;
    let out = env.path(name);
    std::fs::write(&out, bytes).unwrap();
    out
}

fn diff_json(env: &TestEnv, args: &[&std::ffi::OsStr]) -> Value {
    let out = env.cmd(["diff", "--json"]).args(args).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The one range of a one-leaf comparison.
fn only_range(v: &Value) -> &Value {
    let leaves = v["leaves"].as_array().unwrap();
    let changed: Vec<&Value> = leaves
        .iter()
        .filter(|l| l["verdict"] != "identical")
        .collect();
    assert_eq!(changed.len(), 1, "{v}");
    let content = &changed[0]["content"];
    assert_eq!(content["differing_bytes"], 1, "{v}");
    &content["ranges"][0]
}

fn position(bytes: &[u8], needle: &[u8]) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the string is in the firmware")
}

/// Debian's `SeaBIOS` VGA ROM with one letter of its VBE adapter name changed: one byte, at the
/// name's offset.
#[test]
fn a_changed_byte_in_debians_seabios_rom_is_placed_at_its_offset() {
    let env = TestEnv::new();
    let rom = debian_binary("seabios", SEABIOS).join("usr/share/seabios/vgabios-stdvga.bin");
    let bytes = std::fs::read(&rom).unwrap();
    let at = position(&bytes, b"SeaBIOS VBE Adapter") + 8;
    let changed = flipped(&env, &rom, at, "vgabios-stdvga.bin");
    let v = diff_json(&env, &[rom.as_os_str(), changed.as_os_str()]);
    assert_eq!(v["verdict"], "different");
    let range = only_range(&v);
    assert_eq!(range["offset"], at as u64, "{range}");
}

/// Debian's U-Boot for QEMU (RISC-V), explained through the ELF it was made from (shipped
/// beside it in `u-boot-qemu`): a flipped byte in the code of `do_bootd` is named as
/// executable code in that function.
#[test]
fn a_changed_byte_in_debians_u_boot_is_named_by_its_function() {
    let env = TestEnv::new();
    let dir =
        debian_binary("u-boot-qemu", "2023.01+dfsg-2+deb12u3").join("usr/lib/u-boot/qemu-riscv64");
    let (bin, elf) = (dir.join("u-boot.bin"), dir.join("uboot.elf"));
    // Where `do_bootd` sits in the raw image: its address less the image's load address.
    let symbols = run_ok(Command::new("readelf").args(["-W", "-s"]).arg(&elf));
    let address = |name: &str| {
        symbols
            .lines()
            .find(|l| l.split_whitespace().nth(7) == Some(name))
            .and_then(|l| u64::from_str_radix(l.split_whitespace().nth(1)?, 16).ok())
            .unwrap_or_else(|| panic!("`{name}` is in the symbol table"))
    };
    let headers = run_ok(Command::new("readelf").args(["-W", "-l"]).arg(&elf));
    let base = headers
        .lines()
        .find(|l| l.trim_start().starts_with("LOAD"))
        .and_then(|l| {
            u64::from_str_radix(l.split_whitespace().nth(2)?.trim_start_matches("0x"), 16).ok()
        })
        .expect("a loadable segment");
    let offset = usize::try_from(address("do_bootd") - base + 8).unwrap();
    let changed = flipped(&env, &bin, offset, "u-boot.bin");
    let v = diff_json(
        &env,
        &[
            bin.as_os_str(),
            changed.as_os_str(),
            "--layout".as_ref(),
            elf.as_os_str(),
        ],
    );
    let range = only_range(&v);
    assert_eq!(range["offset"], offset as u64, "{range}");
    assert_eq!(range["cause"]["kind"], "code", "{range}");
    assert_eq!(range["cause"]["symbol"], "do_bootd", "{range}");
}

/// Debian's OVMF (UEFI for QEMU): a flipped byte in the firmware volume signature of the
/// code image is one byte at that offset, in a 2 MiB image.
#[test]
fn a_changed_byte_in_debians_ovmf_is_placed_at_its_offset() {
    let env = TestEnv::new();
    let fd = debian_binary("ovmf", "2022.11-6+deb12u2").join("usr/share/OVMF/OVMF_CODE.fd");
    let bytes = std::fs::read(&fd).unwrap();
    let at = position(&bytes, b"_FVH") + 1;
    let changed = flipped(&env, &fd, at, "OVMF_CODE.fd");
    let v = diff_json(&env, &[fd.as_os_str(), changed.as_os_str()]);
    assert_eq!(v["verdict"], "different");
    let range = only_range(&v);
    assert_eq!(range["offset"], at as u64, "{range}");
}
