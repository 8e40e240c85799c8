//! # immutable-aws
//!
//! The AWS backend of [immutable](immutable_core): [`AwsImageStore`] on EC2 AMIs, [`AwsFleet`]
//! on EC2 instances and [`AwsRouter`] on an Application Load Balancer listener, so the same
//! engine that runs on the mock deploys real fleets.

mod config;
mod error;
mod fleet;
mod image;
mod router;

pub use config::{AwsClients, AwsConfig};
pub use fleet::{AwsFleet, AwsFleetBuilder, CAPACITY_TAG, KEY_TAG, LaunchTemplate};
pub use image::AwsImageStore;
pub use router::{AwsRouter, AwsRouterBuilder, EntryPoint, TargetGroupSettings};
