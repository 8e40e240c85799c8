#![doc = include_str!("../README.md")]

mod config;
#[cfg(feature = "dynamodb")]
mod dynamodb;
mod error;
mod fleet;
mod image;
mod router;

pub use config::{AwsClients, AwsConfig};
#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
pub use fleet::{AwsFleet, AwsFleetBuilder, CAPACITY_TAG, KEY_TAG, LaunchTemplate};
pub use image::AwsImageStore;
pub use router::{AwsRouter, AwsRouterBuilder, EntryPoint, TargetGroupSettings};
