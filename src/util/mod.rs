//! Plumbing every room uses: bounded reads of files others may have planted, the one
//! atomic write, bounded runs of the platform's tools, redaction of what users typed,
//! and text and time as messages and documents spell them.

pub mod atomic;
pub mod read;
pub mod redact;
pub mod text;
pub mod time;
pub mod tool;
