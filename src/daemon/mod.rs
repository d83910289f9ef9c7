//! `bootgate run` and `bootgate serve`, in the order things happen: start (signals, the
//! endpoint, the boot facts), the gate and its soak, the runtime loop and its schedule,
//! greenboot's green and red hooks, the rollback window, policy reloads, and what is done
//! with every result.

pub mod facts;
pub mod gate;
pub mod hooks;
pub mod judge;
pub mod last_seen;
pub mod motd;
pub mod observe;
pub mod permanent;
pub mod progress;
pub mod reload;
pub mod retry;
pub mod run;
pub mod runtime;
pub mod schedule;
pub mod serve;
pub mod soak;
pub mod start;
pub mod window;

pub use reload::Reloader;
pub use run::run;
pub use serve::serve;
pub use start::Dirs;
