#![allow(unreachable_pub)]
pub mod lab;
pub mod load;
pub use lab::*;
pub use load::*;
