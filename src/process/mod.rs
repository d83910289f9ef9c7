//! The daemon's life with the operating system: stop and reload signals, the main
//! loop's heartbeat, systemd's notifications and journal, and the reaper that keeps a
//! check's processes from outliving it.

pub mod heartbeat;
pub mod logging;
pub mod notify;
pub mod reaper;
pub mod signals;

pub use heartbeat::Heartbeat;
pub use notify::Notifier;
pub use signals::{Reload, Shutdown, ShutdownTrigger, Signals};

/// Hands memory freed since the last round back to the kernel. A burst of requests
/// leaves glibc's per-thread arenas at their high-water mark; on a small device that
/// memory belongs to the workloads, not to the health gate.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap under its locks; no pointers are passed.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}
