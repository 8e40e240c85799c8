//! Operators' commands: one item per command, beside the deployment's pointer, written once
//! by a conditional `PutItem` keyed by the command's id. Commands given at once are all kept
//! whatever the server does with concurrent writes to one item (there is none), and a
//! retried write of the same command is refused by its condition and stored once.

use std::collections::HashMap;

use immutable_core::{CommandRecord, DeploymentId, ResourceKind, Result};

use super::DynamoStore;
use super::item::{Item, condition_failed, encode, key, parse, pointer_pk, s};
use super::records::KeyQuery;
use crate::error::{Call, MapAws};

/// The sort-key prefix of a command's item: `command#<command id>`.
const COMMAND_PREFIX: &str = "command#";

fn command_item(command: &CommandRecord) -> Result<Item> {
    let mut item = key(
        pointer_pk(&command.deployment),
        format!("{COMMAND_PREFIX}{}", command.id),
    );
    item.insert("kind".to_owned(), s("command"));
    item.insert("body".to_owned(), s(encode(command)?));
    Ok(item)
}

impl DynamoStore {
    /// One conditional `PutItem`; a command already stored under its id is kept as it is.
    pub(super) async fn append_command(&self, command: &CommandRecord) -> Result<()> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(command_item(command)?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(e).aws(Call::new(
                "PutItem",
                ResourceKind::Command,
                command.deployment.as_str(),
            )),
        }
    }

    /// One consistent `Query` of the deployment's command items, oldest first.
    pub(super) async fn read_commands(
        &self,
        deployment: &DeploymentId,
    ) -> Result<Vec<CommandRecord>> {
        let items = self
            .query(KeyQuery {
                kind: ResourceKind::Command,
                index: None,
                condition: "#pk = :p AND begins_with(#sk, :commands)",
                values: HashMap::from([
                    (":p".to_owned(), s(pointer_pk(deployment))),
                    (":commands".to_owned(), s(COMMAND_PREFIX)),
                ]),
                newest_first: false,
                limit: None,
            })
            .await?;
        let mut commands = items
            .iter()
            .map(|item| parse::<CommandRecord>(item, "command", &self.table))
            .collect::<Result<Vec<_>>>()?;
        commands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(commands)
    }
}
