//! The YAML locator: one pass over the policy text that knows where every node and key
//! is written, so each problem names its line and column, and a walk to one node with
//! yaml_serde itself for a kind's own keys.

pub mod events;
pub mod index;
pub mod locate;
pub mod path;

pub use path::Seg;
