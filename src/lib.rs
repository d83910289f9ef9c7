//! bootgate: decides whether a freshly booted A/B operating system is healthy
//! enough to keep, and keeps watching it afterwards.

pub mod boot;
pub mod checks;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod facts;
pub mod fsread;
pub mod gate;
pub mod history;
pub mod lifecycle;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod policy;
pub mod reaper;
pub mod redact;
pub mod report;
pub mod rollback;
pub mod runtime;
pub mod serve;
pub mod server;
pub mod soak;
pub mod state;
pub mod text;
pub mod textfile;
pub mod window;

/// Process exit codes (see the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const DEGRADED: i32 = 1;
    pub const UNHEALTHY: i32 = 2;
    pub const USAGE: i32 = 64;
    pub const NO_INPUT: i32 = 66;
    pub const SOFTWARE: i32 = 70;
    pub const CONFIG: i32 = 78;
}
