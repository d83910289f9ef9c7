//! The motd file: this boot's verdict in two lines ([`crate::render::motd`]) where a
//! login shows it, as greenboot's users are used to (`/run/motd.d/bootgate`, read by
//! pam_motd). Written after the verdict and again whenever it changes (the mark, a
//! fallback made permanent, a revert); atomic, bounded by its renderer, readable by all.

use std::path::Path;

use crate::record::verdict::VerdictRecord;
use crate::render::motd::two_lines;

/// Where the motd file goes by default: `motd.d/bootgate` beside the run dir, so the
/// default run dir `/run/bootgate` gives pam_motd's `/run/motd.d/bootgate`, and a run
/// dir elsewhere keeps the file beside it.
pub fn beside(run_dir: &Path) -> std::path::PathBuf {
    run_dir.parent().unwrap_or(Path::new("")).join("motd.d").join("bootgate")
}

/// Writes the two lines of `v` to `path`; a failure is logged, never fatal.
pub fn write(path: &Path, v: &VerdictRecord) {
    write_lines(path, &two_lines(v));
}

/// Writes `lines` (made by [`crate::render::motd`], so bounded) to `path`; a failure is
/// logged, never fatal.
pub fn write_lines(path: &Path, lines: &str) {
    let made = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    };
    let written = made.and_then(|()| crate::util::atomic::write(path, lines.as_bytes(), 0o644));
    if let Err(e) = written {
        let shown = path.display();
        tracing::warn!(file = %shown, error = %e, "cannot write the motd file {shown}: {e}");
    }
}
