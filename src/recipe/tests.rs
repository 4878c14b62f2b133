use super::*;

const GOOD: &str = r#"
[package]
name = "acme-router-fw"
version = "1.0.0"

[source]
path = "escrow/fw.tar.gz"
digest = "sha256:0000000000000000000000000000000000000000000000000000000000000000"

[toolchain]
tools = ["make", "gcc"]
isolation = "none"

[build]
command = ["make"]
env = { SOURCE_DATE_EPOCH = "1700000000" }
timeout = "5m"

[[artifact]]
path = "out/firmware.img"

[[artifact]]
path = "out/bundle.tar.gz"
shipped = "acme.tar.gz"
"#;

fn load(text: &str) -> Result<Recipe, Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("reprove.toml");
    std::fs::write(&path, text).unwrap();
    Recipe::load(&path)
}

fn message(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn a_good_recipe_loads() {
    let r = load(GOOD).unwrap();
    assert_eq!(r.spec.toolchain.isolation, Isolation::None);
    assert_eq!(r.spec.build.timeout, Duration::from_secs(300));
    assert_eq!(r.spec.artifacts[0].shipped_name(), "firmware.img");
    assert_eq!(r.spec.artifacts[1].shipped_name(), "acme.tar.gz");
    assert_eq!(r.spec.source_date_epoch(), 1_700_000_000);
    assert_eq!(r.hashes, hash_bytes(GOOD.as_bytes()));
}

#[test]
fn isolation_defaults_to_the_sandbox() {
    let r = load(&GOOD.replace("isolation = \"none\"\n", "")).unwrap();
    assert_eq!(r.spec.toolchain.isolation, Isolation::Sandbox);
}

#[test]
fn unknown_key_names_key_and_line() {
    let m = message(&GOOD.replace("timeout = \"5m\"", "timeout = \"5m\"\njobs = 4"));
    assert!(m.contains("line 18"), "{m}");
    assert!(m.contains("unknown field `jobs`"), "{m}");
    assert!(m.contains("reprove.toml"), "{m}");
}

#[test]
fn malformed_toml_names_the_line() {
    let m = message(&GOOD.replace("name = \"acme-router-fw\"", "name = \"acme-router-fw"));
    assert!(m.contains("line 3"), "{m}");
}

#[test]
fn wrong_type_and_missing_field() {
    let m = message(&GOOD.replace("command = [\"make\"]", "command = \"make\""));
    assert!(m.contains("line 15") && m.contains("invalid type"), "{m}");
    assert!(
        m.contains("`command = \"make\"`"),
        "the line is quoted: {m}"
    );
    let m = message(&GOOD.replace("version = \"1.0.0\"\n", ""));
    assert!(m.contains("missing field `version`"), "{m}");
}

#[test]
fn bad_digest_and_duration_are_named() {
    let m = message(&GOOD.replace("sha256:0000", "md5:0000"));
    assert!(m.contains("line 8") && m.contains("ALGO:HEX"), "{m}");
    let m = message(&GOOD.replace("\"5m\"", "\"five minutes\""));
    assert!(m.contains("line 17") && m.contains("duration"), "{m}");
}

#[test]
fn semantic_errors_name_the_key() {
    let cases = [
        (
            "path = \"out/firmware.img\"",
            "path = \"../firmware.img\"",
            "artifact[0].path",
        ),
        (
            "path = \"out/firmware.img\"",
            "path = \"/etc/passwd\"",
            "artifact[0].path",
        ),
        (
            "shipped = \"acme.tar.gz\"",
            "shipped = \"firmware.img\"",
            "artifact[1].shipped",
        ),
        ("command = [\"make\"]", "command = []", "build.command"),
        (
            "SOURCE_DATE_EPOCH = \"1700000000\"",
            "PATH = \"/opt/bin\"",
            "build.env.PATH",
        ),
        (
            "SOURCE_DATE_EPOCH = \"1700000000\"",
            "SOURCE_DATE_EPOCH = \"yesterday\"",
            "build.env.SOURCE_DATE_EPOCH",
        ),
        (
            "tools = [\"make\", \"gcc\"]",
            "tools = [\"/usr/bin/make\"]",
            "toolchain.tools[0]",
        ),
        (
            "command = [\"make\"]",
            "command = [\"make\"]\nsecret-env = [\"SOURCE_DATE_EPOCH\"]",
            "build.secret-env[0]",
        ),
        (
            "command = [\"make\"]",
            "command = [\"make\"]\nsecret-env = [\"TOKEN\", \"A-B\"]",
            "build.secret-env[1]",
        ),
        (
            "command = [\"make\"]",
            "command = [\"make\"]\nsecret-env = [\"TOKEN\", \"TOKEN\"]",
            "build.secret-env[1]",
        ),
    ];
    for (from, to, key) in cases {
        let m = message(&GOOD.replace(from, to));
        assert!(m.contains(&format!("key `{key}`")), "{to}: {m}");
    }
}

#[test]
fn an_artifact_may_name_the_elf_its_image_was_made_from() {
    let with = |elf: &str| {
        GOOD.replace(
            "path = \"out/firmware.img\"",
            &format!("path = \"out/firmware.img\"\nelf = \"{elf}\""),
        )
    };
    let r = load(&with("out/firmware.elf")).unwrap();
    assert_eq!(
        r.spec.artifacts[0].elf.as_deref(),
        Some(Path::new("out/firmware.elf"))
    );
    assert_eq!(r.spec.artifacts[1].elf, None);
    for bad in ["../firmware.elf", "/build/out/firmware.elf", ""] {
        let m = message(&with(bad));
        assert!(m.contains("key `artifact[0].elf`"), "{bad}: {m}");
    }
}

#[test]
fn allowances_parse_and_are_checked() {
    let with = |allow: &str| format!("{GOOD}\n[[allow]]\n{allow}\n");
    let r = load(&with(
        "artifact = \"acme.tar.gz\"\ntrailer = 512\nreason = \"signature\"",
    ))
    .unwrap();
    assert_eq!(r.spec.allowances.len(), 1);
    assert_eq!(r.spec.allowances_for("acme.tar.gz").len(), 1);
    assert!(r.spec.allowances_for("firmware.img").is_empty());
    let m = message(&with(
        "artifact = \"nope.img\"\ntrailer = 512\nreason = \"x\"",
    ));
    assert!(
        m.contains("key `allow[0].artifact`") && m.contains("nope.img"),
        "{m}"
    );
    let m = message(&with(
        "trailer = 512\nregion = { offset = 0, length = 4 }\nreason = \"x\"",
    ));
    assert!(
        m.contains("line 26") && m.contains("exactly one rule"),
        "{m}"
    );
    let m = message(&with("trailer = 512\nreason = \"x\"\ncolour = \"red\""));
    assert!(m.contains("unknown field `colour`"), "{m}");
}

#[test]
fn line_column_counts_from_one() {
    assert_eq!(line_column("ab\ncd", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
}

proptest::proptest! {
    #[test]
    fn parsing_never_panics(text in "\\PC*") {
        let _ = RecipeSpec::parse(&text);
    }

    #[test]
    fn render_then_parse_roundtrips(
        name in "[a-z][a-z0-9-]{0,12}",
        epoch in 0u64..4_000_000_000,
        secs in 1u64..100_000,
    ) {
        let mut spec = RecipeSpec::parse(GOOD).unwrap();
        spec.package.name = name;
        spec.build.env.insert("SOURCE_DATE_EPOCH".into(), epoch.to_string());
        spec.build.timeout = Duration::from_secs(secs);
        let text = toml::to_string(&spec).unwrap();
        proptest::prop_assert_eq!(RecipeSpec::parse(&text).unwrap(), spec);
    }
}

/// See issue 8, item 8: numbers past what a recipe can mean are one clear error naming the
/// file, the line and the key, never a panic later.
#[test]
fn numbers_past_their_range_name_the_key_and_line() {
    let cases = [
        (
            GOOD.replace("timeout = \"5m\"", "timeout = \"18446744073709551615s\""),
            "at most 7 days",
            "timeout = ",
        ),
        (
            GOOD.replace("timeout = \"5m\"", "timeout = \"169h\""),
            "at most 7 days",
            "timeout = ",
        ),
        (
            GOOD.to_owned()
                + "\n[[allow]]\nregion = { offset = 9223372036854775807, length = 2 }\nreason = \"r\"\n",
            "the largest file offset",
            "offset = 9223372036854775807, length = 2",
        ),
        (
            GOOD.to_owned() + "\n[[allow]]\ntrailer = 18446744073709551616\nreason = \"r\"\n",
            "",
            "trailer = ",
        ),
        (
            GOOD.to_owned() + "\n[[allow]]\ntrailer = -1\nreason = \"r\"\n",
            "",
            "trailer = ",
        ),
        (
            GOOD.to_owned() + "\n[[allow]]\nregion = { offset = -1, length = 2 }\nreason = \"r\"\n",
            "",
            "region = ",
        ),
        (
            GOOD.replace("1700000000", "18446744073709551615"),
            "whole number of seconds",
            "SOURCE_DATE_EPOCH",
        ),
    ];
    for (text, what, key) in cases {
        let m = message(&text);
        assert!(m.contains("reprove.toml"), "{m}");
        assert!(m.contains(what), "{what}: {m}");
        assert!(m.contains(key), "{key}: {m}");
        assert!(m.contains("line ") || key == "SOURCE_DATE_EPOCH", "{m}");
    }
}

/// See issue 9, item 6: `[verify] vary` chooses what the second rebuild varies, parsed as
/// strictly as the rest of the recipe.
#[test]
fn vary_lists_known_variations_once_each() {
    let with = |vary: &str| format!("{GOOD}\n[verify]\nvary = {vary}\n");
    let r = load(GOOD).unwrap();
    assert_eq!(
        r.spec.verify.vary, None,
        "no key: every variation that works"
    );
    assert!(r.spec.verify.allows(Vary::Clock) && !r.spec.verify.demands(Vary::Clock));
    let r = load(&with(r#"["umask", "env-order"]"#)).unwrap();
    assert_eq!(r.spec.verify.vary, Some(vec![Vary::Umask, Vary::EnvOrder]));
    assert!(!r.spec.verify.allows(Vary::Clock) && r.spec.verify.allows(Vary::Umask));
    let r = load(&with("[]")).unwrap();
    assert_eq!(
        r.spec.verify.vary,
        Some(vec![]),
        "an empty list varies nothing"
    );

    let m = message(&with(r#"["umask", "moon-phase"]"#));
    assert!(
        m.contains("line 27") && m.contains("unknown variant `moon-phase`"),
        "{m}"
    );
    assert!(m.contains("build-dir") && m.contains("clock"), "{m}");
    let m = message(&with(r#"["clock", "clock"]"#));
    assert!(
        m.contains("key `verify.vary[1]`") && m.contains("`clock` is listed twice"),
        "{m}"
    );
    let m = message(&with(r#""clock""#));
    assert!(m.contains("line 27") && m.contains("vary"), "{m}");
    let m = message(&format!("{GOOD}\n[verify]\nvary = []\nrebuilds = 3\n"));
    assert!(m.contains("unknown field `rebuilds`"), "{m}");
    let hermetic = GOOD.replace(
        "isolation = \"none\"",
        "isolation = \"sandbox\"\nroot = { path = \"r\", digest = \"sha256:0000000000000000000000000000000000000000000000000000000000000000\" }",
    );
    let m = message(&format!("{hermetic}\n[verify]\nvary = [\"clock\"]\n"));
    assert!(
        m.contains("key `verify.vary`") && m.contains("hermetic root"),
        "{m}"
    );
    // The key survives a render and a parse.
    let r = load(&with(r#"["build-dir", "clock"]"#)).unwrap();
    let text = toml::to_string(&r.spec).unwrap();
    assert_eq!(RecipeSpec::parse(&text).unwrap(), r.spec);
}

#[test]
fn an_artifact_may_declare_its_parts() {
    let with = |part: &str| {
        GOOD.replace(
            "path = \"out/firmware.img\"\n",
            &format!("path = \"out/firmware.img\"\n\n[[artifact.part]]\n{part}\n"),
        )
    };
    let r = load(&with(
        "path = \"out/supervisor.bin\"\noffset = 24\nelf = \"out/supervisor.elf\"",
    ))
    .unwrap();
    assert_eq!(
        r.spec.artifacts[0].parts,
        [ArtifactPart {
            path: "out/supervisor.bin".into(),
            offset: Some(24),
            elf: Some("out/supervisor.elf".into()),
        }]
    );
    assert!(r.spec.artifacts[1].parts.is_empty());
    let r = load(&with("path = \"out/rootfs.tar.gz\"")).unwrap();
    assert_eq!(r.spec.artifacts[0].parts[0].offset, None);
    // Strict: an unknown key is refused with its line and column.
    let m = message(&with("path = \"out/a.bin\"\nalign = 4"));
    assert!(
        m.contains("line 24, column 1") && m.contains("align"),
        "{m}"
    );
    for (part, key) in [
        ("path = \"../a.bin\"", "artifact[0].part[0].path"),
        ("path = \"/a.bin\"", "artifact[0].part[0].path"),
        (
            "path = \"a.bin\"\nelf = \"../a.elf\"",
            "artifact[0].part[0].elf",
        ),
        (
            "path = \"a.bin\"\noffset = 9223372036854775807\n[[artifact.part]]\npath = \"a.bin\"",
            "artifact[0].part[1].path",
        ),
    ] {
        let m = message(&with(part));
        assert!(m.contains(&format!("key `{key}`")), "{part}: {m}");
    }
    for bad in ["offset = -1", "offset = \"24\""] {
        let m = message(&with(&format!("path = \"a.bin\"\n{bad}")));
        assert!(m.contains("line 24"), "{bad}: {m}");
    }
}

#[test]
fn blobs_are_pinned_by_digest_with_a_reason() {
    let blob = "\n[[blob]]\nname = \"ucode.bin\"\nreason = \"CPU microcode from the vendor\"\n\
                digest = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n";
    let r = load(&format!("{GOOD}{blob}")).unwrap();
    assert_eq!(r.spec.blobs.len(), 1);
    assert_eq!(r.spec.blobs[0].name, "ucode.bin");
    assert!(message(&format!("{GOOD}{blob}{blob}"))
        .contains("key `blob[1].name`: the blob `ucode.bin` is pinned twice"));
    let no_reason = blob.replace("CPU microcode from the vendor", " ");
    assert!(message(&format!("{GOOD}{no_reason}")).contains("key `blob[0].reason`"));
    let bad_digest = blob.replace("sha256:1111", "md5:1111");
    assert!(message(&format!("{GOOD}{bad_digest}")).contains("line"));
}

/// See issue 10, item 3: a blob is checked against its pin instead of being compared with a
/// rebuild, so a recipe must not pin an artifact's own shipped name (or its file name, which a
/// shipped folder also knows it by) as a blob to take it out of the comparison.
#[test]
fn a_blob_may_not_take_an_artifacts_shipped_name() {
    let pin = |name: &str| {
        format!(
            "{GOOD}\n[[blob]]\nname = \"{name}\"\nreason = \"not rebuilt, trust us\"\n\
             digest = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n"
        )
    };
    for name in ["firmware.img", "acme.tar.gz"] {
        let m = message(&pin(name));
        assert!(
            m.contains("key `blob[0].name`") && m.contains("is shipped by `[[artifact]]`"),
            "{name}: {m}"
        );
    }
    let nested = GOOD.replace(
        "shipped = \"acme.tar.gz\"",
        "shipped = \"release/acme.tar.gz\"",
    );
    let m = message(&pin("acme.tar.gz").replace(GOOD, &nested));
    assert!(m.contains("key `blob[0].name`"), "{m}");
    assert!(load(&pin("radio.bin")).is_ok());
}
