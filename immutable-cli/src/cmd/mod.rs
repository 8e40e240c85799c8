//! One module per group of subcommands.

pub(crate) mod adopt;
pub(crate) mod demo;
pub(crate) mod deploy;
pub(crate) mod halt;
pub(crate) mod image;
pub(crate) mod init;
pub(crate) mod notify;
pub(crate) mod operate;
pub(crate) mod packer;
pub(crate) mod plan;
pub(crate) mod proxy;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod service;
pub(crate) mod store;
