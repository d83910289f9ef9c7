//! Words and tables for people: systemd's `STATUS=` lines, the `check` table and the
//! history table.

pub mod motd;
pub mod status;
pub mod table;
