//! Operators' commands: one item per command, beside the deployment's pointer, written once
//! by a conditional `PutItem` keyed by the command's id. Commands given at once are all kept
//! whatever the server does with concurrent writes to one item (there is none), and a
//! retried write of the same command is refused by its condition and stored once.
//!
//! Tables written before this layout hold a deployment's commands as one list item (sort key
//! `commands`); the same `Query` reads it, so commands given across an upgrade are not lost.

use std::collections::HashMap;

use immutable_core::{CommandRecord, DeploymentId, Error, ResourceKind, Result};

use super::DynamoStore;
use super::item::{Item, condition_failed, encode, key, parse, pointer_pk, s, text};
use super::records::KeyQuery;
use crate::error::{Call, MapAws};

/// The sort-key prefix of a command's item: `command#<command id>`. The earlier layout's list
/// item, `commands`, shares it.
const COMMAND_PREFIX: &str = "command";

/// The sort key of the earlier layout's list item.
const LEGACY_LIST_SK: &str = "commands";

fn command_item(command: &CommandRecord) -> Result<Item> {
    let mut item = key(
        pointer_pk(&command.deployment),
        format!("{COMMAND_PREFIX}#{}", command.id),
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

    /// One consistent `Query` of the deployment's command items (and the earlier layout's
    /// list), oldest first, each command once.
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
        let mut commands: Vec<CommandRecord> = Vec::new();
        for item in &items {
            let listed = if text(item, "sk") == Some(LEGACY_LIST_SK) {
                self.legacy_list(item, deployment)?
            } else {
                vec![parse(item, "command", &self.table)?]
            };
            for command in listed {
                if !commands.iter().any(|c| c.id == command.id) {
                    commands.push(command);
                }
            }
        }
        commands.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(commands)
    }

    /// The commands of the earlier layout's list item.
    fn legacy_list(&self, item: &Item, deployment: &DeploymentId) -> Result<Vec<CommandRecord>> {
        let stored = item.get("commands").and_then(|v| v.as_l().ok());
        stored
            .into_iter()
            .flatten()
            .map(|value| {
                value
                    .as_s()
                    .ok()
                    .and_then(|body| serde_json::from_str(body).ok())
                    .ok_or_else(|| {
                        Error::store(
                            format!(
                                "a command of deployment {deployment} in table {} is \
                                 corrupted; it was left untouched",
                                self.table
                            ),
                            None,
                        )
                    })
            })
            .collect()
    }
}
