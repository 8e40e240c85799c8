//! ALB action encoding: the terminal action of a listener or rule read as a [`Routing`] in
//! percent, and a [`Routing`] written as one weighted forward action (or a fixed 503 when
//! nothing is routed), keeping the other actions.

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, ForwardActionConfig,
    TargetGroupStickinessConfig, TargetGroupTuple,
};
use immutable_core::{Routing, TargetId};

/// The position of the action that ends the list (the one with the highest order).
fn terminal(actions: &[Action]) -> Option<usize> {
    actions
        .iter()
        .enumerate()
        .max_by_key(|(_, a)| a.order().unwrap_or(i32::MAX))
        .map(|(i, _)| i)
}

/// The target groups a forward action sends to, with their raw weights.
fn forwarded(action: &Action) -> Vec<(String, u32)> {
    match action.forward_config() {
        Some(fc) if !fc.target_groups().is_empty() => fc
            .target_groups()
            .iter()
            .filter_map(|t| {
                Some((
                    t.target_group_arn()?.to_owned(),
                    t.weight().unwrap_or(1).max(0) as u32,
                ))
            })
            .collect(),
        _ => match action.target_group_arn() {
            Some(arn) => vec![(arn.to_owned(), 1)],
            None => Vec::new(),
        },
    }
}

/// The split a list of actions forwards to, in percent.
pub(super) fn routing_of(actions: &[Action]) -> Routing {
    let Some(last) = terminal(actions).map(|i| &actions[i]) else {
        return Routing::empty();
    };
    if last.r#type() != Some(&ActionTypeEnum::Forward) {
        return Routing::empty();
    }
    let groups = forwarded(last);
    let total: u32 = groups.iter().map(|(_, w)| w).sum();
    if total == 0 {
        return Routing::empty();
    }
    // Weights set by others need not sum to 100: scale, giving rounding leftovers to the first.
    let mut percents: Vec<(TargetId, u32)> = groups
        .iter()
        .map(|(arn, w)| (TargetId::new(arn), w * 100 / total))
        .collect();
    let leftover = 100 - percents.iter().map(|(_, p)| p).sum::<u32>();
    if let Some(first) = percents.iter_mut().max_by_key(|(_, p)| *p) {
        first.1 += leftover;
    }
    Routing::new(percents).unwrap_or_default()
}

/// The actions with the terminal (forward / fixed-response) action replaced by `routing`.
pub(super) fn with_routing(current: &[Action], routing: &Routing) -> Vec<Action> {
    let mut actions: Vec<Action> = current.to_vec();
    let terminal = terminal(&actions);
    let order = terminal.and_then(|i| actions[i].order());
    let stickiness = terminal
        .and_then(|i| actions[i].forward_config())
        .and_then(|f| f.target_group_stickiness_config())
        .cloned();
    let new = terminal_action(routing, stickiness)
        .set_order(order)
        .build();
    match terminal {
        Some(i) => actions[i] = new,
        None => actions.push(new),
    }
    actions
}

/// One weighted forward action, keeping the group stickiness; a fixed 503 for no routing.
fn terminal_action(
    routing: &Routing,
    stickiness: Option<TargetGroupStickinessConfig>,
) -> aws_sdk_elasticloadbalancingv2::types::builders::ActionBuilder {
    if routing.is_empty() {
        return Action::builder()
            .r#type(ActionTypeEnum::FixedResponse)
            .fixed_response_config(
                FixedResponseActionConfig::builder()
                    .status_code("503")
                    .content_type("text/plain")
                    .message_body("no fleet serves this service")
                    .build(),
            );
    }
    let groups = routing
        .weights()
        .iter()
        .map(|(t, w)| {
            TargetGroupTuple::builder()
                .target_group_arn(t.as_str())
                .weight(*w as i32)
                .build()
        })
        .collect();
    Action::builder()
        .r#type(ActionTypeEnum::Forward)
        .forward_config(
            ForwardActionConfig::builder()
                .set_target_groups(Some(groups))
                .set_target_group_stickiness_config(stickiness)
                .build(),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(weights: &[(&str, i32)]) -> Action {
        Action::builder()
            .r#type(ActionTypeEnum::Forward)
            .order(2)
            .forward_config(
                ForwardActionConfig::builder()
                    .set_target_groups(Some(
                        weights
                            .iter()
                            .map(|(a, w)| {
                                TargetGroupTuple::builder()
                                    .target_group_arn(*a)
                                    .weight(*w)
                                    .build()
                            })
                            .collect(),
                    ))
                    .build(),
            )
            .build()
    }

    #[test]
    fn weights_read_as_percent_and_write_as_one_action() {
        let r = routing_of(&[forward(&[("a", 1), ("b", 3)])]);
        assert_eq!(r.weight(&"a".into()), 25);
        assert_eq!(r.weight(&"b".into()), 75);
        let r = routing_of(&[forward(&[("a", 1), ("b", 1), ("c", 1)])]);
        assert_eq!(r.weights().values().sum::<u32>(), 100);
        let auth = Action::builder()
            .r#type(ActionTypeEnum::AuthenticateOidc)
            .order(1)
            .build();
        let target = Routing::new([("x".into(), 10), ("y".into(), 90)]).unwrap();
        let written = with_routing(&[auth.clone(), forward(&[("a", 1)])], &target);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0], auth, "other actions are kept");
        assert_eq!(written[1].order(), Some(2));
        assert_eq!(routing_of(&written), target);
        let empty = with_routing(&written, &Routing::empty());
        assert_eq!(empty[1].r#type(), Some(&ActionTypeEnum::FixedResponse));
        assert!(routing_of(&empty).is_empty());
    }
}
