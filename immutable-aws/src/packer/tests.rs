use std::fmt::Debug;

use immutable_core::{Error, ImageId, Labels, check_labels};
use serde_json::json;

use super::{BUILD_LABEL, PackerManifest, RUN_LABEL};

/// The field and reason of an [`Error::InvalidInput`]; panics on anything else.
fn invalid<T: Debug>(result: immutable_core::Result<T>) -> (String, String) {
    match result {
        Err(Error::InvalidInput { field, reason, .. }) => (field, reason),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

fn build(name: &str, run: &str, artifact_id: &str) -> serde_json::Value {
    json!({
        "name": name,
        "builder_type": "amazon-ebs",
        "build_time": 1_700_000_000,
        "files": null,
        "artifact_id": artifact_id,
        "packer_run_uuid": run,
        "custom_data": null,
    })
}

fn manifest(builds: Vec<serde_json::Value>, last_run: Option<&str>) -> PackerManifest {
    let doc = json!({ "builds": builds, "last_run_uuid": last_run });
    PackerManifest::parse(&doc.to_string()).unwrap()
}

#[test]
fn the_documented_shape_is_read_field_by_field() {
    let text = r#"{
      "builds": [{
        "name": "web",
        "builder_type": "amazon-ebs",
        "build_time": 1700000000,
        "files": null,
        "artifact_id": "us-east-1:ami-0abc,us-west-2:ami-0def",
        "packer_run_uuid": "run-1",
        "custom_data": {"k": "v"}
      }],
      "last_run_uuid": "run-1"
    }"#;
    let manifest = PackerManifest::parse(text).unwrap();
    assert_eq!(manifest.last_run_uuid.as_deref(), Some("run-1"));
    assert_eq!(manifest.path(), None);
    let web = manifest.select(None).unwrap();
    assert_eq!(web.name, "web");
    assert_eq!(web.builder_type.as_deref(), Some("amazon-ebs"));
    assert_eq!(web.build_time, Some(1_700_000_000));
    assert_eq!(web.packer_run_uuid.as_deref(), Some("run-1"));
    assert_eq!(
        web.amis().unwrap(),
        [
            ("us-east-1".to_owned(), ImageId::new("ami-0abc")),
            ("us-west-2".to_owned(), ImageId::new("ami-0def")),
        ]
    );
    assert_eq!(web.ami_for("us-west-2").unwrap(), ImageId::new("ami-0def"));
    let labels = web.labels().unwrap();
    let want = Labels::from([
        ("k".to_owned(), "v".to_owned()),
        (BUILD_LABEL.to_owned(), "web".to_owned()),
        (RUN_LABEL.to_owned(), "run-1".to_owned()),
    ]);
    assert_eq!(labels, want);
    check_labels(&labels).unwrap();
}

#[test]
fn by_default_the_last_build_of_the_last_run_is_selected() {
    let builds = vec![
        build("web", "run-0", "us-east-1:ami-00"),
        build("web", "run-1", "us-east-1:ami-01"),
        build("worker", "run-1", "us-east-1:ami-02"),
        // A build appended by hand after the last run, of no run Packer recorded last.
        build("web", "run-x", "us-east-1:ami-03"),
    ];
    let m = manifest(builds.clone(), Some("run-1"));
    assert_eq!(m.select(None).unwrap().artifact_id, "us-east-1:ami-02");
    let last_run: Vec<_> = m.last_run().map(|b| b.name.as_str()).collect();
    assert_eq!(last_run, ["web", "worker"]);
    // Without a last run named: the last build.
    let m = manifest(builds.clone(), None);
    assert_eq!(m.select(None).unwrap().artifact_id, "us-east-1:ami-03");
    // A last run that made none of the builds.
    let (field, reason) = invalid(manifest(builds, Some("run-9")).select(None));
    assert_eq!(field, "last_run_uuid");
    assert!(reason.contains("run-9"), "{reason}");
}

#[test]
fn a_build_is_selected_by_name_newest_first_or_the_names_are_listed() {
    let m = manifest(
        vec![
            build("web", "run-0", "us-east-1:ami-00"),
            build("worker", "run-0", "us-east-1:ami-01"),
            build("web", "run-1", "us-east-1:ami-02"),
        ],
        Some("run-1"),
    );
    assert_eq!(
        m.select(Some("web")).unwrap().artifact_id,
        "us-east-1:ami-02"
    );
    assert_eq!(
        m.select(Some("worker")).unwrap().artifact_id,
        "us-east-1:ami-01"
    );
    let (field, reason) = invalid(m.select(Some("api")));
    assert_eq!(field, "build");
    assert!(reason.contains("`api`"), "{reason}");
    assert!(reason.contains("web, worker"), "names once each: {reason}");
}

#[test]
fn a_manifest_without_builds_is_read_but_nothing_is_selected() {
    let m = manifest(Vec::new(), None);
    let (field, _) = invalid(m.select(None));
    assert_eq!(field, "builds");
    let (field, _) = invalid(m.select(Some("web")));
    assert_eq!(field, "builds");
}

#[test]
fn a_region_without_an_ami_is_refused_naming_the_regions_there_are() {
    let m = manifest(
        vec![build("web", "r", "us-east-1:ami-0a,eu-west-1:ami-0b")],
        Some("r"),
    );
    let (field, reason) = invalid(m.select(None).unwrap().ami_for("us-west-2"));
    assert_eq!(field, "region");
    assert!(reason.contains("`us-west-2`"), "{reason}");
    assert!(reason.contains("us-east-1, eu-west-1"), "{reason}");
    assert!(reason.contains("builds[0].artifact_id"), "{reason}");
}

#[test]
fn artifact_ids_that_are_not_region_ami_pairs_are_refused() {
    for artifact in [
        "sha256:4d0c6a2b",                    // a Docker build
        "ami-0abc",                           // no region
        "us-east-1:ami-",                     // no id
        "us-east-1:ami-0ABC",                 // not EC2's spelling
        "us-east-1:snap-0abc",                // not an AMI
        "US East:ami-0abc",                   // not a region
        "us-east-1:ami-0abc,",                // a trailing comma
        "us-east-1:ami-0abc,eu-west-1 ami-1", // one pair of two
        "",
    ] {
        let m = manifest(
            vec![
                build("ok", "r", "us-east-1:ami-01"),
                build("bad", "r", artifact),
            ],
            Some("r"),
        );
        let bad = m.select(Some("bad")).unwrap();
        let (field, reason) = invalid(bad.ami_for("us-east-1"));
        assert_eq!(field, "builds[1].artifact_id", "{artifact}");
        assert!(reason.contains("`bad`"), "{artifact}: {reason}");
        assert!(reason.contains("amazon-ebs"), "{artifact}: {reason}");
        invalid(bad.amis());
        // The good build of the same manifest still serves.
        let ok = m.select(Some("ok")).unwrap().ami_for("us-east-1").unwrap();
        assert_eq!(ok, ImageId::new("ami-01"));
    }
}

#[test]
fn custom_data_that_cannot_be_a_label_is_refused_naming_its_key() {
    let long = "x".repeat(257);
    for (key, value) in [
        ("sha", json!(42)),
        ("ok", json!({ "nested": true })),
        ("immutable:service", json!("billing")),
        ("immutable:promoted", json!("d-1")),
        ("aws:cloudformation:stack-name", json!("s")),
        ("AWS:x", json!("s")),
        (BUILD_LABEL, json!("other")),
        (RUN_LABEL, json!("other")),
        ("", json!("v")),
        ("long", json!(long)),
    ] {
        let mut b = build("web", "r", "us-east-1:ami-01");
        b["custom_data"] = json!({ key: value });
        let m = manifest(vec![b], Some("r"));
        let (field, reason) = invalid(m.select(None).unwrap().labels());
        assert_eq!(field, format!("builds[0].custom_data.{key}"), "{reason}");
    }
}

#[test]
fn without_custom_data_or_a_run_the_labels_name_the_build() {
    let mut b = build("web", "r", "us-east-1:ami-01");
    b.as_object_mut().unwrap().remove("packer_run_uuid");
    b.as_object_mut().unwrap().remove("custom_data");
    let labels = manifest(vec![b], None)
        .select(None)
        .unwrap()
        .labels()
        .unwrap();
    assert_eq!(
        labels,
        Labels::from([(BUILD_LABEL.to_owned(), "web".to_owned())])
    );
}

#[test]
fn text_that_is_not_json_is_refused_with_line_and_column() {
    let (field, reason) = invalid(PackerManifest::parse("{\n  \"builds\": [,]\n}"));
    assert_eq!(field, "packer-manifest");
    assert!(reason.contains("not JSON"), "{reason}");
    assert!(reason.contains("line 2 column"), "{reason}");
}

#[test]
fn a_file_names_its_path_in_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    let shown = path.display().to_string();

    std::fs::write(&path, "Build 'web' finished").unwrap();
    let (field, reason) = invalid(PackerManifest::from_file(&path));
    assert_eq!(field, "packer-manifest");
    assert!(
        reason.contains(&shown) && reason.contains("line 1 column"),
        "{reason}"
    );

    let (field, reason) = invalid(PackerManifest::from_file(dir.path().join("absent.json")));
    assert_eq!(field, "packer-manifest");
    assert!(reason.contains("absent.json"), "{reason}");

    let doc = json!({ "builds": [build("web", "r", "us-east-1:ami-01")], "last_run_uuid": "r" });
    std::fs::write(&path, doc.to_string()).unwrap();
    let m = PackerManifest::from_file(&path).unwrap();
    assert_eq!(m.path(), Some(path.as_path()));
    let (_, reason) = invalid(m.select(Some("api")));
    assert!(reason.contains(&shown), "{reason}");
    let (_, reason) = invalid(m.select(None).unwrap().ami_for("eu-west-1"));
    assert!(reason.contains(&shown), "{reason}");
}

#[test]
fn a_manifest_of_the_wrong_shape_is_refused_naming_the_field() {
    for (doc, want) in [
        (json!([]), "packer-manifest"),
        (json!({}), "builds"),
        (json!({ "builds": {} }), "builds"),
        (json!({ "builds": [1] }), "builds[0]"),
        (
            json!({ "builds": [{ "name": "web" }] }),
            "builds[0].artifact_id",
        ),
        (
            json!({ "builds": [{ "name": 3, "artifact_id": "us-east-1:ami-01" }] }),
            "builds[0].name",
        ),
        (
            json!({ "builds": [build("web", "r", "us-east-1:ami-01"), { "artifact_id": "x" }] }),
            "builds[1].name",
        ),
        (
            json!({ "builds": [{ "name": "w", "artifact_id": "x", "custom_data": "k=v" }] }),
            "builds[0].custom_data",
        ),
        (
            json!({ "builds": [{ "name": "w", "artifact_id": "x", "build_time": "today" }] }),
            "builds[0].build_time",
        ),
        (json!({ "builds": [], "last_run_uuid": 7 }), "last_run_uuid"),
    ] {
        let (field, reason) = invalid(PackerManifest::parse(&doc.to_string()));
        assert_eq!(field, want, "{doc}: {reason}");
    }
}
