//! Reading and writing the actions of a service's entry point: a listener's default actions
//! or a rule's actions, and those of the preview listener.

use aws_sdk_elasticloadbalancingv2::types::Action;
use immutable_core::{Error, ResourceKind, Result};

use super::{AwsRouter, EntryPoint};
use crate::error::{Call, MapAws};

impl AwsRouter {
    /// The actions of the service's listener default action or rule; reads that overlap
    /// share one request.
    pub(super) async fn actions(&self, entry: &EntryPoint) -> Result<Vec<Action>> {
        match entry {
            EntryPoint::Rule { arn, .. } => self.reads.read(arn, || self.rule_actions(arn)).await,
            EntryPoint::Listener { arn, .. } => {
                self.reads.read(arn, || self.listener_actions(arn)).await
            }
        }
    }

    /// Replaces the actions of the service's listener default action or rule, in one call.
    pub(super) async fn write_actions(
        &self,
        entry: &EntryPoint,
        actions: Vec<Action>,
    ) -> Result<()> {
        let arn = entry.arn();
        // No read that starts during or after the write joins one from before it.
        self.reads.forget(arn);
        let written = match entry {
            EntryPoint::Rule { .. } => self.write_rule(arn, actions).await,
            EntryPoint::Listener { .. } => self.write_listener(arn, actions).await,
        };
        self.reads.forget(arn);
        written
    }

    async fn rule_actions(&self, rule: &str) -> Result<Vec<Action>> {
        let out = self
            .elb
            .describe_rules()
            .rule_arns(rule)
            .send()
            .await
            .aws(Call::new("DescribeRules", ResourceKind::EntryPoint, rule))?;
        let r = out
            .rules()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::EntryPoint, rule))?;
        Ok(r.actions().to_vec())
    }

    /// A listener's default actions.
    pub(super) async fn listener_actions(&self, listener: &str) -> Result<Vec<Action>> {
        let out = self
            .elb
            .describe_listeners()
            .listener_arns(listener)
            .send()
            .await
            .aws(Call::new(
                "DescribeListeners",
                ResourceKind::EntryPoint,
                listener,
            ))?;
        let l = out
            .listeners()
            .first()
            .ok_or_else(|| Error::not_found(ResourceKind::EntryPoint, listener))?;
        Ok(l.default_actions().to_vec())
    }

    async fn write_rule(&self, rule: &str, actions: Vec<Action>) -> Result<()> {
        self.elb
            .modify_rule()
            .rule_arn(rule)
            .set_actions(Some(actions))
            .send()
            .await
            .aws(Call::new("ModifyRule", ResourceKind::EntryPoint, rule))?;
        Ok(())
    }

    /// Replaces a listener's default actions.
    pub(super) async fn write_listener(&self, listener: &str, actions: Vec<Action>) -> Result<()> {
        self.elb
            .modify_listener()
            .listener_arn(listener)
            .set_default_actions(Some(actions))
            .send()
            .await
            .aws(Call::new(
                "ModifyListener",
                ResourceKind::EntryPoint,
                listener,
            ))?;
        Ok(())
    }
}
