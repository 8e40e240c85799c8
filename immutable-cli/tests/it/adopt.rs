//! `immutable adopt` on moto's server: a listener that forwards to a target group made by hand
//! is refused by `deploy` (which says how to adopt), previewed by `adopt` with read calls only,
//! adopted by `adopt --apply` (a second one is refused, exit 2), then replaced by `deploy`.

use std::time::Duration;

use crate::common::moto::{Moto, MotoCli, is_read};
use crate::common::{REFUSED, SUCCEEDED};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, ProtocolEnum, TargetDescription, TargetTypeEnum,
};

const MINUTE: Duration = Duration::from_secs(60);

/// Two instances launched by hand behind a group made by hand, all of the listener's
/// traffic on it: the group's ARN and the instance ids.
async fn serve_by_hand(moto: &Moto, listener: &str, vpc: &str) -> (String, Vec<String>) {
    let clients = moto.clients().await;
    let (ec2, elb) = (&clients.ec2, &clients.elbv2);
    let images = ec2.describe_images().owners("amazon").send().await.unwrap();
    let run = ec2
        .run_instances()
        .image_id(images.images()[0].image_id().unwrap())
        .min_count(2)
        .max_count(2)
        .send()
        .await
        .unwrap();
    let ids: Vec<String> = run
        .instances()
        .iter()
        .map(|i| i.instance_id().unwrap().to_owned())
        .collect();
    let created = elb
        .create_target_group()
        .name("legacy-web")
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .target_type(TargetTypeEnum::Instance)
        .send()
        .await
        .unwrap();
    let group = created.target_groups()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    let targets = ids
        .iter()
        .map(|i| TargetDescription::builder().id(i).build());
    elb.register_targets()
        .target_group_arn(&group)
        .set_targets(Some(targets.collect()))
        .send()
        .await
        .unwrap();
    let forward = Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .target_group_arn(&group)
        .build();
    elb.modify_listener()
        .listener_arn(listener)
        .default_actions(forward)
        .send()
        .await
        .unwrap();
    (group, ids)
}

fn flag<'a>(args: &'a [String], name: &str) -> &'a str {
    &args[args.iter().position(|a| a == name).unwrap() + 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_previews_then_tags_and_deploy_replaces_the_adopted_fleet() {
    let _machine = immutable_testkit::serial::shared().await;
    let moto = Moto::start();
    let store = tempfile::tempdir().unwrap();
    let cli = moto.demo_cli(store.path());
    let listener = flag(&cli.args, "--listener-arn").to_owned();
    let vpc = flag(&cli.args, "--vpc-id").to_owned();
    let (group, hand) = serve_by_hand(&moto, &listener, &vpc).await;
    let deploy = [
        "deploy",
        "--image",
        "web-v1",
        "--capacity",
        "2",
        "--bake-time",
        "0s",
    ];

    let refused = cli.run(&deploy, MINUTE);
    assert_eq!(refused.code, REFUSED, "{refused:?}");
    assert!(
        refused.stderr.contains("adopt --service web"),
        "{refused:?}"
    );

    moto.start_recording();
    let preview = cli.run(&["adopt"], MINUTE);
    let actions = moto.stop_recording();
    assert_eq!(preview.code, SUCCEEDED, "{preview:?}");
    assert!(preview.stdout.contains("would adopt"), "{preview:?}");
    assert!(preview.stdout.contains(&group), "{preview:?}");
    assert!(
        hand.iter().all(|i| preview.stdout.contains(i)),
        "{preview:?}"
    );
    let writes: Vec<_> = actions.iter().filter(|a| !is_read(a)).collect();
    assert!(writes.is_empty(), "the preview wrote: {writes:?}");

    let applied = cli.run(&["adopt", "--apply", "--output", "json"], MINUTE);
    assert_eq!(applied.code, SUCCEEDED, "{applied:?}");
    let doc = applied.json();
    assert_eq!(doc["adoption"]["mode"], "apply", "{doc}");
    assert_eq!(doc["adoption"]["target"], group.as_str(), "{doc}");

    let again = cli.run(&["adopt", "--apply"], MINUTE);
    assert_eq!(again.code, REFUSED, "{again:?}");
    assert!(again.stderr.contains("managed already"), "{again:?}");

    let v1 = cli.run(&deploy, MINUTE);
    assert_eq!(v1.code, SUCCEEDED, "{v1:?}");
    let clients = moto.clients().await;
    let out = clients
        .ec2
        .describe_instances()
        .set_instance_ids(Some(hand.clone()))
        .send()
        .await
        .unwrap();
    let states: Vec<_> = out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(|i| i.state().unwrap().name().unwrap().as_str().to_owned())
        .collect();
    assert_eq!(states, ["terminated", "terminated"], "adopted instances");
    let history = moto.store_cli(store.path()).run(&["history"], MINUTE);
    assert_eq!(history.code, SUCCEEDED, "{history:?}");
    assert_eq!(history.stdout.lines().count(), 2, "{history:?}");
}
