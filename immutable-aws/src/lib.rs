#![doc = include_str!("../README.md")]

mod asg;
mod backends;
#[cfg(feature = "cloudwatch")]
mod cloudwatch;
mod config;
mod cost;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod ec2;
mod error;
mod fleet;
mod image;
mod memory;
mod ownership;
pub mod packer;
mod paginate;
mod router;
pub mod sandbox;
#[cfg(feature = "sns")]
mod sns;

pub use asg::{AsgFleet, AsgFleetBuilder};
pub use backends::{group_backends, instance_backends};
#[cfg(feature = "cloudwatch")]
pub use cloudwatch::{CloudWatchAlarmCheck, InsufficientData};
pub use config::{AwsClients, AwsConfig};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
pub use error::AwsCallError;
pub use fleet::{AwsFleet, AwsFleetBuilder, LaunchTemplate};
pub use image::AwsImageStore;
/// The tag holding a fleet's asked-for capacity: [`tags::CAPACITY`](immutable_core::tags::CAPACITY).
pub use immutable_core::tags::CAPACITY as CAPACITY_TAG;
/// The tag holding a fleet's idempotency key: [`tags::FLEET_KEY`](immutable_core::tags::FLEET_KEY).
pub use immutable_core::tags::FLEET_KEY as KEY_TAG;
pub use router::{AwsRouter, AwsRouterBuilder, EntryPoint, TargetGroupSettings, TargetMembership};
#[cfg(feature = "sns")]
pub use sns::SnsNotifier;
