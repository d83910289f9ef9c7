//! bootgate: decides whether a freshly booted A/B operating system is healthy
//! enough to keep, and keeps watching it afterwards.
//!
//! The rooms, from the top floor down (a room imports only from rooms below it):
//! `cli` parses the command line; `daemon` runs `run` and `serve` in the order things
//! happen; `server` is the HTTP endpoint; `metrics` the Prometheus registry and its
//! textfile; `render` the words and tables people read; `boot` the boot loaders, the
//! booted slot and the pure boot decisions; `record` the documents bootgate writes and
//! reads back; `engine` the rounds, the verdict and the thresholds; `checks` and
//! `policy` the check kinds and the validated policy; `process` the daemon's life with
//! systemd; `util` bounded reads, atomic writes, bounded tool runs, text and redaction.

pub mod boot;
pub mod checks;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod metrics;
pub mod policy;
pub mod process;
pub mod record;
pub mod render;
pub mod server;
pub mod util;

/// Process exit codes (see docs/endpoint.md).
pub mod exit {
    pub const OK: i32 = 0;
    pub const DEGRADED: i32 = 1;
    pub const UNHEALTHY: i32 = 2;
    pub const USAGE: i32 = 64;
    pub const NO_INPUT: i32 = 66;
    pub const SOFTWARE: i32 = 70;
    pub const CANT_CREATE: i32 = 73;
    /// No verdict yet: the gate is still running (sysexits EX_TEMPFAIL, try again).
    pub const TEMP_FAIL: i32 = 75;
    pub const CONFIG: i32 = 78;
}
