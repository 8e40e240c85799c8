//! Operators' commands: one item per deployment (beside its pointer) holding them as a list.
//! An append is one atomic `UpdateItem`, so commands given at once are all kept; a retried
//! append may store one twice, and readers drop the repeat by its id.

use aws_sdk_dynamodb::types::AttributeValue;
use immutable_core::{CommandRecord, DeploymentId, Error, ResourceKind, Result};

use super::DynamoStore;
use super::item::{Item, encode, key, pointer_pk, s};
use crate::error::{Call, MapAws};

const COMMANDS_SK: &str = "commands";

fn commands_key(deployment: &DeploymentId) -> Item {
    key(pointer_pk(deployment), COMMANDS_SK)
}

impl DynamoStore {
    pub(super) async fn append_command(&self, command: &CommandRecord) -> Result<()> {
        let id = command.deployment.as_str();
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(commands_key(&command.deployment)))
            .update_expression("SET #c = list_append(if_not_exists(#c, :empty), :new)")
            .expression_attribute_names("#c", "commands")
            .expression_attribute_values(":empty", AttributeValue::L(Vec::new()))
            .expression_attribute_values(":new", AttributeValue::L(vec![s(encode(command)?)]))
            .send()
            .await
            .aws(Call::new("UpdateItem", ResourceKind::Command, id))?;
        Ok(())
    }

    pub(super) async fn read_commands(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<CommandRecord>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(commands_key(deployment)))
            .consistent_read(true)
            .send()
            .await
            .aws(Call::new(
                "GetItem",
                ResourceKind::Command,
                deployment.as_str(),
            ))?;
        let Some(item) = out.item else {
            return Ok(Vec::new());
        };
        let mut commands: Vec<CommandRecord> = Vec::new();
        let stored = item.get("commands").and_then(|v| v.as_l().ok());
        for value in stored.into_iter().flatten() {
            let command: CommandRecord = value
                .as_s()
                .ok()
                .and_then(|body| serde_json::from_str(body).ok())
                .ok_or_else(|| {
                    Error::store(
                        format!(
                            "a command of deployment {deployment} in table {} is corrupted; \
                             it was left untouched",
                            self.table
                        ),
                        None,
                    )
                })?;
            if !commands.iter().any(|c| c.id == command.id) {
                commands.push(command);
            }
        }
        commands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(commands)
    }
}
