//! Service leases: one item in the service's partition, taken and renewed by conditional
//! writes.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::types::ReturnValue;
use immutable_core::{DeploymentId, Error, Lease, LeaseGrant, ResourceKind, Result, ServiceName};

use super::DynamoStore;
use super::item::{
    Item, LEASE_SK, condition_failed, encode, key, millis, n, parse, s, service_pk, text,
};
use crate::error::{Call, MapAws};

fn lease_key(service: &ServiceName) -> Item {
    key(service_pk(service), LEASE_SK)
}

fn lease_item(lease: &Lease) -> Result<Item> {
    let mut item = lease_key(&lease.service);
    item.extend([
        ("kind".to_owned(), s("lease")),
        ("holder".to_owned(), s(&lease.holder)),
        ("expires_at".to_owned(), n(millis(lease.expires_at))),
        ("body".to_owned(), s(encode(lease)?)),
    ]);
    Ok(item)
}

fn call<'a>(operation: &'static str, service: &'a ServiceName) -> Call<'a> {
    Call::new(operation, ResourceKind::Lease, service.as_str())
}

impl DynamoStore {
    /// The lease as it is now, read after a conditional write was refused, as the error.
    async fn locked(&self, service: &ServiceName) -> Result<Error> {
        Ok(match self.read_lease(service).await? {
            Some(held) => Error::Locked {
                service: service.clone(),
                holder: held.holder,
                deployment: held.deployment,
            },
            None => Error::not_found(ResourceKind::Lease, service.to_string()),
        })
    }

    pub(super) async fn take_lease(
        &self,
        service: &ServiceName,
        deployment: &DeploymentId,
        holder: &str,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<LeaseGrant> {
        let lease = Lease {
            service: service.clone(),
            deployment: deployment.clone(),
            holder: holder.to_owned(),
            expires_at: now + ttl,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease_item(&lease)?))
            .condition_expression("attribute_not_exists(pk) OR holder = :h OR expires_at < :now")
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":now", n(millis(now)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let replaced = match out.attributes {
                    Some(old) if text(&old, "holder") != Some(holder) && !old.is_empty() => {
                        Some(parse(&old, "lease", &self.table)?)
                    }
                    _ => None,
                };
                Ok(LeaseGrant { lease, replaced })
            }
            Err(e) if condition_failed(&e) => Err(self.locked(service).await?),
            Err(e) => Err(e).aws(call("PutItem", service)),
        }
    }

    pub(super) async fn extend_lease(
        &self,
        lease: &Lease,
        ttl: Duration,
        now: SystemTime,
    ) -> Result<Lease> {
        let renewed = Lease {
            expires_at: now + ttl,
            ..lease.clone()
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease_item(&renewed)?))
            .condition_expression("holder = :h")
            .expression_attribute_values(":h", s(&lease.holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(renewed),
            Err(e) if condition_failed(&e) => Err(self.locked(&lease.service).await?),
            Err(e) => Err(e).aws(call("PutItem", &lease.service)),
        }
    }

    pub(super) async fn drop_lease(&self, lease: &Lease) -> Result<()> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(&lease.service)))
            .condition_expression("holder = :h")
            .set_expression_attribute_values(Some(HashMap::from([(
                ":h".to_owned(),
                s(&lease.holder),
            )])))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if condition_failed(&e) => Ok(()),
            Err(e) => Err(e).aws(call("DeleteItem", &lease.service)),
        }
    }
}

impl DynamoStore {
    /// The lease as stored, expired or not.
    pub(super) async fn read_lease(&self, service: &ServiceName) -> Result<Option<Lease>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(lease_key(service)))
            .consistent_read(true)
            .send()
            .await
            .aws(call("GetItem", service))?;
        out.item
            .map(|item| parse(&item, "lease", &self.table))
            .transpose()
    }
}
