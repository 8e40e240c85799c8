//! `image import --packer-manifest` on moto: the AMI of the CLI's region from a Packer-shaped
//! manifest with two builds in two regions, a deploy by the imported name, and refusals (an
//! AMI that does not exist, another service's AMI, a file that is not JSON) that tag nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::common::moto::{Moto, MotoCli};
use crate::common::{REFUSED, SUCCEEDED};
use aws_config::Region;
use immutable_core::tags;
use serde_json::json;

const MINUTE: Duration = Duration::from_secs(60);

async fn register(ec2: &aws_sdk_ec2::Client, name: &str) -> String {
    let out = ec2.register_image().name(name).send().await.unwrap();
    out.image_id().unwrap().to_owned()
}

async fn tags_of(ec2: &aws_sdk_ec2::Client, ami: &str) -> BTreeMap<String, String> {
    let out = ec2.describe_images().image_ids(ami).send().await.unwrap();
    out.images()[0]
        .tags()
        .iter()
        .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
        .collect()
}

fn write_manifest(path: &Path, builds: serde_json::Value, last_run: &str) {
    let doc = json!({ "builds": builds, "last_run_uuid": last_run });
    std::fs::write(path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

fn build(name: &str, run: &str, artifact: String, custom: serde_json::Value) -> serde_json::Value {
    json!({
        "name": name,
        "builder_type": "amazon-ebs",
        "build_time": 1_700_000_000,
        "files": null,
        "artifact_id": artifact,
        "packer_run_uuid": run,
        "custom_data": custom,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packer_manifest_brings_in_the_regions_ami_and_a_deploy_uses_it() {
    let _machine = immutable_testkit::serial::shared().await;
    let moto = Moto::start();
    let store = tempfile::tempdir().unwrap();
    let deployer = moto.demo_cli(store.path());
    // The image commands take the backend's options, not the engine's.
    let mut cli = deployer.clone();
    let at = cli
        .args
        .iter()
        .position(|a| a == "--poll-interval")
        .unwrap();
    cli.args.drain(at..at + 2);
    let east = moto.clients().await.ec2;
    let west_sdk = moto
        .clients()
        .await
        .sdk
        .to_builder()
        .region(Region::new("us-west-2"))
        .build();
    let west = aws_sdk_ec2::Client::new(&west_sdk);
    // Two runs of Packer: an old build, then the last run with an app build in two regions
    // (and a second build of that run, chosen with --build).
    let old = register(&east, "web-packer-old").await;
    let app_east = register(&east, "web-packer-3").await;
    let app_west = register(&west, "web-packer-3").await;
    let debug_east = register(&east, "web-packer-3-debug").await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("packer-manifest.json");
    write_manifest(
        &manifest,
        json!([
            build("app", "run-1", format!("us-east-1:{old}"), json!({})),
            build(
                "debug",
                "run-2",
                format!("us-east-1:{debug_east}"),
                json!({"flavour": "debug"})
            ),
            build(
                "app",
                "run-2",
                format!("us-east-1:{app_east},us-west-2:{app_west}"),
                json!({"git_sha": "abc123"})
            ),
        ]),
        "run-2",
    );
    let m = manifest.to_str().unwrap();
    let imported = cli.run(
        &[
            "image",
            "import",
            "--packer-manifest",
            m,
            "--output",
            "json",
        ],
        MINUTE,
    );
    assert_eq!(imported.code, SUCCEEDED, "{imported:?}");
    let doc = imported.json();
    assert_eq!(
        doc["image"]["id"],
        app_east.as_str(),
        "the last build of the last run, in us-east-1: {doc}"
    );
    assert_eq!(doc["packer"]["build"], "app");
    assert_eq!(doc["packer"]["region"], "us-east-1");
    let t = tags_of(&east, &app_east).await;
    assert_eq!(
        t.get(tags::SERVICE).map(String::as_str),
        Some("web"),
        "{t:?}"
    );
    assert_eq!(
        t.get("git_sha").map(String::as_str),
        Some("abc123"),
        "{t:?}"
    );
    assert!(
        tags_of(&west, &app_west).await.is_empty(),
        "the other region's AMI is not touched"
    );
    assert!(
        tags_of(&east, &old).await.is_empty(),
        "an older run's AMI is not touched"
    );
    let chosen = cli.run(
        &[
            "image",
            "import",
            "--packer-manifest",
            m,
            "--build",
            "debug",
            "--output",
            "json",
        ],
        MINUTE,
    );
    assert_eq!(
        chosen.json()["image"]["id"],
        debug_east.as_str(),
        "{chosen:?}"
    );

    // The same manifest from us-west-2 brings in that region's AMI of the build.
    let mut in_west = cli.clone();
    let at = in_west.args.iter().position(|a| a == "--region").unwrap();
    in_west.args[at + 1] = "us-west-2".into();
    let west_import = in_west.run(
        &[
            "image",
            "import",
            "--packer-manifest",
            m,
            "--output",
            "json",
        ],
        MINUTE,
    );
    assert_eq!(west_import.code, SUCCEEDED, "{west_import:?}");
    assert_eq!(west_import.json()["image"]["id"], app_west.as_str());
    assert_eq!(
        tags_of(&west, &app_west)
            .await
            .get(tags::SERVICE)
            .map(String::as_str),
        Some("web")
    );

    // A deploy by the imported name.
    let deployed = deployer.run(
        &[
            "deploy",
            "--image",
            "web-packer-3",
            "--capacity",
            "1",
            "--bake-time",
            "0s",
        ],
        MINUTE,
    );
    assert_eq!(deployed.code, SUCCEEDED, "{deployed:?}");
    let list = cli
        .run(&["image", "list", "--output", "json"], MINUTE)
        .json();
    let row = list["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == app_east.as_str())
        .cloned()
        .unwrap();
    assert_eq!(row["in_use_by"].as_array().unwrap().len(), 1, "{list}");

    // Refusals tag nothing: an AMI that does not exist, another service's AMI, not JSON.
    let foreign = register(&east, "billing-build").await;
    east.create_tags()
        .resources(&foreign)
        .tags(
            aws_sdk_ec2::types::Tag::builder()
                .key(tags::SERVICE)
                .value("billing")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let untouched = register(&east, "web-packer-4").await;
    for (ami, says) in [
        ("ami-0123456789abcdef0", "not found"),
        (foreign.as_str(), "not owned by service `web`"),
    ] {
        write_manifest(
            &manifest,
            json!([build("app", "run-3", format!("us-east-1:{ami}"), json!({}))]),
            "run-3",
        );
        let r = cli.run(&["image", "import", "--packer-manifest", m], MINUTE);
        assert_ne!(r.code, SUCCEEDED, "{r:?}");
        assert!(
            r.stderr.to_lowercase().contains(says),
            "should say {says}: {r:?}"
        );
    }
    assert_eq!(
        tags_of(&east, &foreign)
            .await
            .get(tags::SERVICE)
            .map(String::as_str),
        Some("billing")
    );
    assert!(tags_of(&east, &untouched).await.is_empty());
    std::fs::write(&manifest, "{ this is not json").unwrap();
    let r = cli.run(&["image", "import", "--packer-manifest", m], MINUTE);
    assert_eq!(r.code, REFUSED, "{r:?}");
    assert!(r.stderr.contains(m), "names the file: {r:?}");
    let one = cli.run(
        &[
            "image",
            "import",
            "--ami",
            &untouched,
            "--label",
            "channel=beta",
            "--output",
            "json",
        ],
        MINUTE,
    );
    assert_eq!(one.code, SUCCEEDED, "{one:?}");
    assert_eq!(
        tags_of(&east, &untouched)
            .await
            .get("channel")
            .map(String::as_str),
        Some("beta")
    );
}

#[test]
fn an_aws_command_without_a_region_is_refused_naming_where_to_give_one() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::common::BIN)
        .args(["--service", "web", "image", "import", "--backend", "aws"])
        .args(["--ami", "ami-0123456789abcdef0"])
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(REFUSED), "{stderr}");
    assert!(
        stderr.contains("which AWS region? pass --region"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("WARN"),
        "no other crate's warnings by default: {stderr}"
    );
}
