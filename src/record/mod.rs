//! The documents bootgate writes and reads back, each a serde type that both writes and
//! reads it: this boot's `verdict.json` ([`verdict`]), the gate's `gate.json` while it
//! runs ([`progress`]), the boot history ([`history`]) and the boot facts the health
//! document shows ([`boot`]).
//!
//! A newer bootgate may have written what an older one reads (a fallback to the old image
//! is when history matters most): unknown fields are ignored, and a value of a known field
//! that this version does not know reads as [`Lenient::Other`] instead of refusing the
//! whole record.

use serde::{Deserialize, Serialize};

pub mod boot;
pub mod history;
pub mod hold;
pub mod last_seen;
pub mod progress;
pub mod verdict;

/// A value as known to this version, or one it does not know (kept out of the way, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lenient<T> {
    Known(T),
    /// Missing, `null`, or a value this version does not know.
    #[default]
    Other,
}

impl<T> Lenient<T> {
    /// Whether the value was missing or unknown (then it is not written back).
    pub fn is_other(&self) -> bool {
        matches!(self, Lenient::Other)
    }
}

impl<T: Copy> Lenient<T> {
    /// The value, when this version knows it.
    pub fn known(self) -> Option<T> {
        match self {
            Lenient::Known(v) => Some(v),
            Lenient::Other => None,
        }
    }
}

impl<T> From<T> for Lenient<T> {
    fn from(v: T) -> Self {
        Lenient::Known(v)
    }
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Lenient::Known(v) => v.serialize(s),
            Lenient::Other => s.serialize_none(),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Known(T),
            Other(serde::de::IgnoredAny),
        }
        Ok(match Either::deserialize(d)? {
            Either::Known(v) => Lenient::Known(v),
            Either::Other(_) => Lenient::Other,
        })
    }
}

#[cfg(test)]
#[path = "golden_tests.rs"]
mod golden_tests;
