//! `bless-boot`: systemd-boot's boot counting (the Boot Loader Specification's boot
//! assessment). Before it boots an entry `NAME+LEFT-DONE.conf`, systemd-boot renames it
//! one try down and names the file in the `LoaderBootCountPath` EFI variable. A passed
//! gate only sends READY=1: bootgate.service is ordered before `boot-complete.target`,
//! after which systemd's own `systemd-bless-boot.service` renames the entry `NAME.conf`.
//! A failed gate keeps the target from being reached, runs `systemd-bless-boot bad`
//! (`NAME+0-DONE.conf`, which systemd-boot sorts last) and reboots only while another
//! entry can still boot.
//!
//! The rollback window's revert, after the entry was blessed, renames it bad as
//! `systemd-bless-boot bad` names it (`NAME+0-DONE.conf`), so that systemd-boot sorts it
//! after every entry with tries left and boots the next one. bootgate renames it itself
//! (the rename is all that `systemd-bless-boot bad` does), beside the file systemd-boot
//! counted, and says the file it renamed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Backend, RevertError, Reverted, Step};
use crate::boot::decide::RebootDecision;
use crate::record::boot::BackendFacts;

/// Where the kernel shows EFI variables.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// The vendor GUID of systemd-boot's variables (the Boot Loader Interface).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";
/// Where systemd looks for the ESP and XBOOTLDR, in its order, unless `SYSTEMD_ESP_PATH` says.
pub const ESP_PATHS: [&str; 3] = ["/efi", "/boot/efi", "/boot"];
/// Where distributions install `systemd-bless-boot` (it is not on `PATH`).
pub const TOOL_PATHS: [&str; 2] = ["/usr/lib/systemd/systemd-bless-boot", "/lib/systemd/systemd-bless-boot"];
/// How long `systemd-bless-boot bad` may take.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A boot entry's file name split into its name and boot counter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file name without the counter: `bootgate-2.conf`.
    pub name: String,
    /// Tries left (`+LEFT`); `None` for an entry without a counter.
    pub left: Option<u32>,
    /// Tries done (`-DONE`).
    pub done: Option<u32>,
}

impl Entry {
    /// Splits `NAME+LEFT[-DONE].conf` (or `.efi`) as systemd-boot does; a name whose
    /// counter does not parse has none.
    pub fn parse(file: &str) -> Entry {
        let plain = Entry { name: file.to_string(), left: None, done: None };
        let (stem, suffix) = match file.rfind('.') {
            Some(dot) => file.split_at(dot),
            None => (file, ""),
        };
        let Some(plus) = stem.rfind('+') else { return plain };
        let counter = &stem[plus + 1..];
        let (left, done) = match counter.split_once('-') {
            Some((l, d)) => (l, Some(d)),
            None => (counter, None),
        };
        let number = |s: &str| (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok());
        let Some(Some(left)) = number(left) else { return plain };
        let done = match done.map(number) {
            None => None,
            Some(Some(Some(d))) => Some(d),
            Some(_) => return plain,
        };
        Entry { name: format!("{}{suffix}", &stem[..plus]), left: Some(left), done }
    }

    /// Whether systemd-boot would still boot it ahead of entries marked bad.
    pub fn bootable(&self) -> bool {
        self.left != Some(0)
    }
}

/// An EFI variable's value as a string: a 4-byte attribute header, then UTF-16LE,
/// usually NUL-terminated.
pub fn efi_string(raw: &[u8]) -> Option<String> {
    let body = raw.get(4..)?;
    if body.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    String::from_utf16(&units[..end]).ok()
}

/// The booted entry as systemd-boot counted it: `\loader\entries\a+2-1.conf` as a
/// relative path.
fn count_path(efivars: &Path) -> Option<PathBuf> {
    let raw = std::fs::read(efivars.join(format!("LoaderBootCountPath-{LOADER_GUID}"))).ok()?;
    let value = efi_string(&raw)?;
    let relative = value.replace('\\', "/");
    let relative = relative.trim_start_matches('/');
    (!relative.is_empty() && !relative.split('/').any(|c| c == "..")).then(|| PathBuf::from(relative))
}

/// The entries systemd-boot can choose from: `loader/entries/*.conf` and `EFI/Linux/*.efi`
/// under each root, sorted by file name.
pub fn entries(roots: &[PathBuf]) -> Vec<(PathBuf, Entry)> {
    let mut found = Vec::new();
    for root in roots {
        for (dir, suffix) in [("loader/entries", ".conf"), ("EFI/Linux", ".efi")] {
            let Ok(listing) = std::fs::read_dir(root.join(dir)) else { continue };
            for file in listing.flatten() {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.to_ascii_lowercase().ends_with(suffix) && !name.starts_with('.') {
                    found.push((file.path(), Entry::parse(&name)));
                }
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The entries other than `booted` that systemd-boot would boot before any bad one, by
/// name. Which of them it picks is its own ordering (sort keys, versions, `default`).
pub fn fallbacks<'a>(entries: &'a [(PathBuf, Entry)], booted: &str) -> Vec<&'a str> {
    let mut names: Vec<&str> = Vec::new();
    // The same name on the ESP and on XBOOTLDR is one entry to systemd-boot.
    for e in entries.iter().map(|(_, e)| e).filter(|e| e.name != booted && e.bootable()) {
        if !names.contains(&e.name.as_str()) {
            names.push(&e.name);
        }
    }
    names
}

/// The name `systemd-bless-boot bad` gives an entry: no tries left, the tries done kept
/// (`a+0-1.conf`, or `a+0.conf` when none were done).
pub fn bad_name(entry: &Entry) -> String {
    let (stem, suffix) = entry.name.rfind('.').map_or((entry.name.as_str(), ""), |dot| entry.name.split_at(dot));
    match entry.done.unwrap_or(0) {
        0 => format!("{stem}+0{suffix}"),
        done => format!("{stem}+0-{done}{suffix}"),
    }
}

/// Renames the booted entry `counted` (relative to `root`: the name systemd-boot gave it
/// for this try) bad, whether systemd-bless-boot has blessed it since (`NAME.conf`) or
/// not; an entry already bad stays. Returns the entry's file as it is now.
pub fn rename_bad(root: &Path, counted: &Path) -> Result<PathBuf, String> {
    let dir = root.join(counted.parent().unwrap_or(Path::new("")));
    let file = counted.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let entry = Entry::parse(&file);
    let bad = dir.join(bad_name(&entry));
    if bad.exists() {
        return Ok(bad);
    }
    let sources = [dir.join(&entry.name), dir.join(&file)];
    let Some(source) = sources.iter().find(|s| s.exists()) else {
        return Err(format!("neither {} nor {} exists", sources[0].display(), sources[1].display()));
    };
    std::fs::rename(source, &bad)
        .map_err(|e| format!("cannot rename {} to {}: {e}", source.display(), bad.display()))?;
    // As systemd-bless-boot does: the directory synced, so that the name survives a power cut.
    if let Err(e) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        tracing::debug!("cannot sync {}: {e}", dir.display());
    }
    Ok(bad)
}

/// What systemd-boot said about this boot, read once at start.
#[derive(Debug, Clone, Default)]
struct Counted {
    /// The ESP (or XBOOTLDR) holding the counted entry.
    esp: Option<PathBuf>,
    /// The counted entry's path relative to it.
    path: Option<PathBuf>,
    /// The entry systemd-boot booted (`LoaderEntrySelected`), counted or not.
    selected: Option<String>,
}

/// systemd-boot with boot counting, as this boot saw it.
pub struct BlessBoot {
    roots: Vec<PathBuf>,
    counted: Counted,
    tools: Vec<PathBuf>,
}

impl BlessBoot {
    /// Reads the loader's variables under `efivars` and looks for the counted entry under
    /// `roots` (the ESP candidates); `Err` when this machine did not boot through UEFI.
    pub fn detect(efivars: &Path, roots: Vec<PathBuf>) -> Result<BlessBoot, String> {
        if !efivars.is_dir() {
            return Err(format!("this machine did not boot through UEFI ({} does not exist)", efivars.display()));
        }
        let path = count_path(efivars);
        let esp = path.as_ref().and_then(|p| roots.iter().find(|r| r.join(p).exists()).cloned());
        let selected = std::fs::read(efivars.join(format!("LoaderEntrySelected-{LOADER_GUID}")))
            .ok()
            .and_then(|raw| efi_string(&raw));
        let tools = TOOL_PATHS.iter().map(PathBuf::from).collect();
        Ok(BlessBoot { roots, counted: Counted { esp, path, selected }, tools })
    }

    /// The machine's own: `/sys/firmware/efi/efivars`, and `SYSTEMD_ESP_PATH` (plus
    /// `SYSTEMD_XBOOTLDR_PATH`) or systemd's usual mount points.
    pub fn system() -> Result<BlessBoot, String> {
        let from_env: Vec<PathBuf> = ["SYSTEMD_ESP_PATH", "SYSTEMD_XBOOTLDR_PATH"]
            .iter()
            .filter_map(std::env::var_os)
            .map(PathBuf::from)
            .collect();
        let roots = if from_env.is_empty() { ESP_PATHS.iter().map(PathBuf::from).collect() } else { from_env };
        BlessBoot::detect(Path::new(EFIVARS), roots)
    }

    /// Whether systemd-boot counted this boot (`LoaderBootCountPath` is set).
    pub fn counting(&self) -> bool {
        self.counted.path.is_some()
    }

    /// The booted entry as counted at start: its file name split.
    fn booted(&self) -> Option<Entry> {
        let file = self.counted.path.as_ref()?.file_name()?.to_string_lossy().into_owned();
        Some(Entry::parse(&file))
    }

    fn search_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.counted.esp.iter().cloned().collect();
        roots.extend(self.roots.iter().filter(|r| Some(*r) != self.counted.esp.as_ref()).cloned());
        roots
    }

    /// `systemd-bless-boot bad`, bounded; `Err` says why it did not mark the entry.
    async fn mark_bad(&self) -> Result<(), String> {
        let Some(tool) = self.tools.iter().find(|t| t.exists()) else {
            let tried: Vec<String> = self.tools.iter().map(|t| t.display().to_string()).collect();
            return Err(format!("systemd-bless-boot is not installed (looked for {})", tried.join(", ")));
        };
        let mut command = tokio::process::Command::new(tool);
        command.arg("bad");
        if let Some(esp) = &self.counted.esp {
            // The ESP bootgate found the entry on, so both agree on which file to rename.
            command.env("SYSTEMD_ESP_PATH", esp);
        }
        let shown = format!("{} bad", tool.display());
        crate::process::reaper::run_tool(command, shown, TIMEOUT).await.map(drop).map_err(|e| e.to_string())
    }
}

impl Backend for BlessBoot {
    fn name(&self) -> &'static str {
        "bless-boot"
    }

    fn facts(&self) -> Step<'_, BackendFacts> {
        Box::pin(async {
            let booted = self.booted();
            let esp = self.counted.esp.as_ref().map(|p| p.display().to_string());
            let error = (self.counting() && esp.is_none()).then(|| {
                let roots: Vec<String> = self.roots.iter().map(|r| r.display().to_string()).collect();
                format!("the counted entry is on none of {}", roots.join(", "))
            });
            BackendFacts::BlessBoot {
                counting: self.counting(),
                esp,
                entry: booted.as_ref().map(|e| e.name.clone()).or_else(|| self.counted.selected.clone()),
                boot_count_path: self.counted.path.as_ref().map(|p| format!("/{}", p.display())),
                tries_left: booted.as_ref().and_then(|e| e.left),
                tries_done: booted.as_ref().and_then(|e| e.done),
                error,
            }
        })
    }

    fn on_pass(&self) -> Step<'_, Result<String, String>> {
        Box::pin(async {
            Ok(match self.booted() {
                Some(e) => format!(
                    "READY=1: systemd-bless-boot.service marks {} good once boot-complete.target is reached",
                    e.name
                ),
                None => "READY=1: systemd-boot did not count this boot, so there is no entry to mark".into(),
            })
        })
    }

    fn on_failure(&self) -> Step<'_, RebootDecision> {
        Box::pin(async {
            // Uncounted, the entry is already blessed: systemd-boot would boot it again.
            let Some(booted) = self.booted() else {
                tracing::warn!(
                    "systemd-boot did not count this boot (no LoaderBootCountPath): its entry is marked good"
                );
                return RebootDecision::StayConfirmed;
            };
            match self.mark_bad().await {
                Ok(()) => tracing::info!("marked boot entry {} bad with systemd-bless-boot", booted.name),
                Err(e) => tracing::error!(
                    "cannot mark boot entry {} bad: {e}; systemd-boot retries it while its tries last",
                    booted.name
                ),
            }
            let roots = self.search_roots();
            let all = tokio::task::spawn_blocking(move || entries(&roots)).await.unwrap_or_default();
            match fallbacks(&all, &booted.name) {
                next if next.is_empty() => RebootDecision::StayNoFallback,
                next => RebootDecision::RebootToEntry { bad: booted.name.clone(), next: next.join(" or ") },
            }
        })
    }

    fn revertible(&self) -> Result<(), String> {
        let Some(booted) = self.booted() else {
            return Err("not armed: systemd-boot did not count this boot, so its entry was good before it".into());
        };
        if self.counted.esp.is_none() {
            return Err(format!("not armed: the counted entry {} is on no ESP bootgate found", booted.name));
        }
        if fallbacks(&entries(&self.search_roots()), &booted.name).is_empty() {
            return Err(format!("not armed: no entry other than {} has tries left for systemd-boot", booted.name));
        }
        Ok(())
    }

    fn revert(&self) -> Step<'_, Result<Reverted, RevertError>> {
        Box::pin(async {
            let (Some(booted), Some(esp), Some(counted)) =
                (self.booted(), self.counted.esp.clone(), self.counted.path.clone())
            else {
                return Err(RevertError::NoFallback);
            };
            let roots = self.search_roots();
            let name = booted.name.clone();
            let done = tokio::task::spawn_blocking(move || {
                // The entries as they are now: another may have been marked bad since the start.
                let next: Vec<String> = fallbacks(&entries(&roots), &name).into_iter().map(String::from).collect();
                if next.is_empty() {
                    return Ok(None);
                }
                rename_bad(&esp, &counted).map(|bad| Some((bad, next)))
            })
            .await;
            let shown = format!("boot entry {}", booted.name);
            match done {
                Ok(Ok(Some((bad, next)))) => {
                    tracing::info!("marked {shown} bad: {}", bad.display());
                    Ok(Reverted { booted: shown, fallback: next.join(" or ") })
                }
                Ok(Ok(None)) => Err(RevertError::NoFallback),
                Ok(Err(why)) => Err(RevertError::Failed { booted: shown, why }),
                Err(e) => Err(RevertError::Failed { booted: shown, why: format!("the rename ended abnormally: {e}") }),
            }
        })
    }
}

#[cfg(test)]
#[path = "bless_boot_tests.rs"]
mod tests;
