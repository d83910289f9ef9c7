//! Words and tables for people: systemd's `STATUS=` lines, the `check` table, the
//! history table and the line of `bootgate wait`.

pub mod motd;
pub mod status;
pub mod table;
pub mod wait;
