//! The rebuild predicate that the real `reprove verify` writes, checked against the published
//! JSON Schema (`docs/rebuild-predicate.schema.json`), and the schema shown to reject what it
//! must: a check that cannot fail proves nothing.

use std::path::Path;

use base64::Engine as _;
use reprove::attest::rebuild::RebuildPredicate;
use serde_json::{json, Value};

use crate::support::{tamper, Demo, BUNDLE};

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A validator for the schema's definition `def` (`predicate` or `statement`), with `format`
/// checked (draft 2020-12 only annotates it by default).
fn validator(def: &str) -> jsonschema::Validator {
    let mut schema: Value = serde_json::from_str(&repo_file("docs/rebuild-predicate.schema.json"))
        .expect("the schema is JSON");
    assert_eq!(
        schema["$ref"], "#/$defs/predicate",
        "the schema's root is the predicate"
    );
    schema["$ref"] = json!(format!("#/$defs/{def}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the schema is a valid draft 2020-12 schema")
}

/// Every error the validator finds, as `path: message`.
fn errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn assert_valid(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    let found = errors(validator, instance);
    assert!(
        found.is_empty(),
        "{what} does not match the schema: {found:#?}"
    );
}

fn assert_rejected(validator: &jsonschema::Validator, instance: &Value, what: &str) {
    assert!(
        !validator.is_valid(instance),
        "{what}: the schema accepts it"
    );
}

/// The statement in the bundle's second envelope, decoded by hand from the JSON line (not with
/// the crate's own reader): what a consumer of the file sees.
fn rebuild_statement(bundle: &Path) -> Value {
    let text = std::fs::read_to_string(bundle).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "a VSA and a rebuild predicate");
    let envelope: Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().unwrap())
        .unwrap();
    serde_json::from_slice(&payload).unwrap()
}

/// Mutations of a valid predicate that the schema must reject, each named.
fn mutations(predicate: &Value) -> Vec<(&'static str, Value)> {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut p = predicate.clone();
        f(&mut p);
        p
    };
    let remove = |key: &'static str| {
        edit(&|p| {
            p.as_object_mut().unwrap().remove(key);
        })
    };
    vec![
        ("verdict `maybe`", edit(&|p| p["verdict"] = json!("maybe"))),
        ("no `verdict`", remove("verdict")),
        ("no `escrow`", remove("escrow")),
        ("no `schema_version`", remove("schema_version")),
        (
            "`schema_version` 2",
            edit(&|p| p["schema_version"] = json!(2)),
        ),
        (
            "an undocumented field",
            edit(&|p| p["surprise"] = json!(true)),
        ),
        (
            "an artifact verdict `fine`",
            edit(&|p| p["artifacts"][0]["verdict"] = json!("fine")),
        ),
        (
            "an uppercase hex digest",
            edit(&|p| {
                let hex = p["recipe"]["digest"]["sha256"]
                    .as_str()
                    .unwrap()
                    .to_uppercase();
                p["recipe"]["digest"]["sha256"] = json!(hex);
            }),
        ),
        (
            "a pin digest as one `ALGO:HEX` string",
            edit(&|p| {
                let hex = p["toolchain"]["pins"][0]["digest"]["sha256"].clone();
                p["toolchain"]["pins"][0]["digest"] =
                    json!(format!("sha256:{}", hex.as_str().unwrap()));
            }),
        ),
        (
            "a termination without its value",
            edit(&|p| p["rebuilds"][0]["termination"] = json!({"kind": "exited"})),
        ),
        (
            "a time that is not RFC 3339",
            edit(&|p| p["finished_on"] = json!("yesterday")),
        ),
    ]
}

#[test]
fn the_real_rebuild_predicate_matches_the_schema() {
    let predicate = validator("predicate");
    let statement = validator("statement");
    let demo = Demo::locked("none");
    let bundle = demo.env.path("att.intoto.jsonl");

    // The vendor's release: identical, one rebuild.
    demo.verify([BUNDLE]).assert().code(0);
    let identical = rebuild_statement(&bundle);
    assert_eq!(identical["predicate"]["verdict"], "identical");
    assert_valid(
        &statement,
        &identical,
        "the statement of an identical result",
    );
    assert_valid(
        &predicate,
        &identical["predicate"],
        "an identical predicate",
    );

    // One byte changed in the code: different, with a second (varied) rebuild and the
    // differences, the optional fields the first run leaves out.
    tamper(&demo, |img| img[0x200] ^= 0x01);
    demo.verify([BUNDLE]).assert().code(1);
    let different = rebuild_statement(&bundle);
    let p = &different["predicate"];
    assert_eq!(p["verdict"], "different");
    assert_eq!(p["rebuilds"].as_array().unwrap().len(), 2);
    assert!(p["artifacts"][0]["difference"].is_object());
    assert_valid(
        &statement,
        &different,
        "the statement of a different result",
    );
    assert_valid(&predicate, p, "a different predicate");

    // The varied rebuild fails: `failed_rebuild` and `first_rebuild_verdict`, the fields
    // only that case writes.
    let recipe = demo.recipe().replace(
        "command = [\"make\"]",
        "command = [\"sh\", \"-c\", \"case $(umask) in *77) exit 3;; esac; exec make\"]",
    );
    demo.set_recipe(&recipe);
    demo.verify([BUNDLE]).assert().code(1);
    let failed = rebuild_statement(&bundle);
    let f = &failed["predicate"];
    assert_eq!(f["verdict"], "build-failed");
    assert_eq!(f["failed_rebuild"]["rebuild"], 2);
    assert_eq!(f["artifacts"][0]["first_rebuild_verdict"], "different");
    assert_valid(
        &statement,
        &failed,
        "the statement of a failed second rebuild",
    );
    assert_valid(&predicate, f, "a failed-second-rebuild predicate");

    // `attest verify` reads them with the one type the writer writes, and that type holds
    // every field: read and written back, each is unchanged.
    for real in [&identical["predicate"], p, f] {
        match RebuildPredicate::parse(real.clone()) {
            Ok(read) => assert_eq!(&read.to_value(), real, "a field the type drops"),
            Err(e) => panic!("attest verify's parser rejects real output: {e}"),
        }
    }

    // The same check fails where it must.
    for real in [&identical["predicate"], p] {
        for (what, mutated) in mutations(real) {
            assert_rejected(&predicate, &mutated, what);
        }
    }
    let mut no_subject = different.clone();
    no_subject["subject"] = json!([]);
    assert_rejected(&statement, &no_subject, "a statement without subjects");
}

#[test]
fn the_documented_example_and_the_test_fixture_match_the_schema() {
    let predicate = validator("predicate");
    let fixture: Value = serde_json::from_str(&repo_file("testdata/attest/rebuild-predicate.json"))
        .expect("the fixture is JSON");
    assert_valid(
        &predicate,
        &fixture,
        "testdata/attest/rebuild-predicate.json",
    );

    // The first ```json block after the section's example heading.
    let doc = repo_file("docs/attestation.md");
    let section = doc
        .split_once("### Example of a rebuild predicate")
        .expect("docs/attestation.md has the example heading")
        .1;
    let block = section
        .split_once("```json\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("a ```json block follows the heading")
        .0;
    let example: Value = serde_json::from_str(block).expect("the documented example is JSON");
    assert_valid(&predicate, &example, "the example in docs/attestation.md");
}
