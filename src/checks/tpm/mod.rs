//! `tpm`: the TPM opens through tss-esapi, reports its fixed properties and its
//! PCRs read. The TSS library blocks, so every call runs on its own thread, and
//! at most one such thread per check can be stuck in the library at a time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use schemars::JsonSchema;
use serde::Deserialize;
use tss_esapi::tcti_ldr::{DeviceConfig, TctiNameConf};

use self::read::Conf;
use self::tcti::Tcti;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx};
use crate::policy::types::{FsPath, NonEmpty, Text};
use crate::policy::unique::UniqueMap;
use crate::policy::yaml::Seg;
use crate::util::redact::quote;

mod esys;
mod read;
mod tcti;

use read::{Job, Reading};

/// Device nodes tried in order when the policy names neither `device` nor `tcti`.
const DEFAULT_DEVICES: [&str; 2] = ["/dev/tpmrm0", "/dev/tpm0"];
/// PC Client TPMs have 24 PCRs.
const PCR_COUNT: u8 = 24;

/// Keys of a `tpm` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// TPM device node (default `/dev/tpmrm0`, then `/dev/tpm0`).
    pub device: Option<FsPath>,
    /// TCTI string instead of a device, e.g. `swtpm:host=127.0.0.1,port=2321`.
    pub tcti: Option<Text>,
    /// PCRs to read per bank (default `{sha256: [0, 1, 2, 3, 4, 5, 6, 7]}`).
    pub pcrs: Option<UniqueMap<Bank, NonEmpty<u8>>>,
    /// PCRs that must not be all zeros in any bank read (measured boot happened).
    pub pcrs_nonzero: Option<Vec<u8>>,
    /// Run the TPM's self-test and fail on its result (default false).
    pub self_test: Option<bool>,
    /// What a missing TPM device means: `fail` (default) or `pass`, for mixed fleets.
    pub absent: Option<Absent>,
}

/// A PCR bank (hash algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Bank {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
    #[serde(rename = "sm3_256")]
    Sm3,
}

impl fmt::Display for Bank {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Bank::Sha1 => "sha1",
            Bank::Sha256 => "sha256",
            Bank::Sha384 => "sha384",
            Bank::Sha512 => "sha512",
            Bank::Sm3 => "sm3_256",
        })
    }
}

/// What a missing TPM device means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Absent {
    Fail,
    Pass,
}

/// How the TPM is reached.
#[derive(Debug, Clone)]
enum Target {
    /// The first of these device nodes that exists.
    Devices(Vec<PathBuf>),
    /// A TCTI from the policy.
    Tcti(Arc<Tcti>),
}

/// A validated `tpm` check.
#[derive(Debug)]
pub struct Tpm {
    target: Target,
    /// Bank → sorted PCR indices to read (including those of `pcrs_nonzero`).
    banks: Vec<(Bank, Vec<u8>)>,
    nonzero: Vec<u8>,
    self_test: bool,
    absent: Absent,
    in_flight: Arc<InFlight>,
}

impl Kind for Tpm {
    const NAME: &'static str = "tpm";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        let target = match (k.device.map(|d| d.0), k.tcti) {
            (Some(_), Some(_)) => {
                return Err(KeyError::at("tcti", "give either `device` or `tcti`, not both"));
            }
            (Some(device), None) if !device.is_absolute() => {
                return Err(KeyError::at(
                    "device",
                    format!("`{}` is not an absolute path", quote(&device.to_string_lossy())),
                ));
            }
            (Some(device), None) => Target::Devices(vec![device]),
            (None, Some(tcti)) => Target::Tcti(Arc::new(parse_tcti(&tcti.0)?)),
            (None, None) => Target::Devices(DEFAULT_DEVICES.iter().map(PathBuf::from).collect()),
        };
        let absent = k.absent.unwrap_or(Absent::Fail);
        if absent == Absent::Pass && matches!(target, Target::Tcti(..)) {
            return Err(KeyError::at(
                "absent",
                "`absent: pass` applies to device nodes; a `tcti` TPM that does not answer is a failure",
            ));
        }
        let nonzero: BTreeSet<u8> = k.pcrs_nonzero.unwrap_or_default().into_iter().collect();
        let mut wanted: BTreeMap<Bank, BTreeSet<u8>> = match k.pcrs {
            None => BTreeMap::from([(Bank::Sha256, (0..8).collect())]),
            Some(map) if map.0.is_empty() => return Err(KeyError::at("pcrs", "name at least one bank")),
            Some(map) => map.0.into_iter().map(|(bank, list)| (bank, list.0.into_iter().collect())).collect(),
        };
        for (bank, indices) in &wanted {
            if let Some(&bad) = indices.iter().find(|&&i| i >= PCR_COUNT) {
                let key = vec![Seg::key("pcrs"), Seg::key(&bank.to_string())];
                return Err(KeyError { key, message: format!("PCR {bad} does not exist; PCRs are 0–23") });
            }
        }
        if let Some(&bad) = nonzero.iter().find(|&&i| i >= PCR_COUNT) {
            return Err(KeyError::at("pcrs_nonzero", format!("PCR {bad} does not exist; PCRs are 0–23")));
        }
        for indices in wanted.values_mut() {
            indices.extend(&nonzero);
        }
        Ok(Tpm {
            target,
            banks: wanted.into_iter().map(|(b, set)| (b, set.into_iter().collect())).collect(),
            nonzero: nonzero.into_iter().collect(),
            self_test: k.self_test.unwrap_or(false),
            absent,
            in_flight: Arc::default(),
        })
    }
}

/// Checks a TCTI as tss-esapi will parse it, so a typo is a policy error rather than a boot failure.
fn parse_tcti(text: &str) -> Result<Tcti, KeyError> {
    Tcti::new(text).map_err(|why| {
        KeyError::at(
            "tcti",
            format!(
                "`{}` is not a usable TCTI ({why}); write e.g. `swtpm:host=127.0.0.1,port=2321` or `device:/dev/tpmrm0`",
                quote(text)
            ),
        )
    })
}

/// The blocking TPM call of a check that has not returned yet, if any.
#[derive(Debug, Default)]
struct InFlight(Mutex<Option<Instant>>);

/// The right to run one blocking TPM call; released when the call returns.
struct Claim(Arc<InFlight>);

impl InFlight {
    /// Claims the check's one blocking slot, or says since when it has been taken.
    fn claim(self: &Arc<Self>) -> Result<Claim, Instant> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match *slot {
            Some(since) => Err(since),
            None => {
                *slot = Some(Instant::now());
                Ok(Claim(Arc::clone(self)))
            }
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        *self.0.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Tpm {
    async fn attempt(&self, ctx: &RunCtx) -> Outcome {
        let (conf, label, device) = match &self.target {
            Target::Tcti(tcti) => (Conf::Policy(tcti.clone()), tcti.text().to_string(), None),
            Target::Devices(paths) => match opened(paths.clone(), ctx).await {
                Err(message) => return Outcome::fail(message),
                Ok(Ok(path)) => match device_conf(&path) {
                    Ok(conf) => (Conf::Ready(conf), path.display().to_string(), Some(path)),
                    Err(message) => return Outcome::fail(message),
                },
                Ok(Err(refused)) if refused.is_empty() && self.absent == Absent::Pass => {
                    return Outcome::pass("no TPM present").with("present", false);
                }
                Ok(Err(refused)) if refused.is_empty() => {
                    let tried: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                    return Outcome::fail(format!("no TPM device ({} absent)", tried.join(", ")));
                }
                // A TPM that exists but cannot be opened is never "absent".
                Ok(Err(refused)) => return Outcome::fail(format!("no usable TPM device: {}", refused.join("; "))),
            },
        };
        let claim = match self.in_flight.claim() {
            Ok(claim) => claim,
            Err(since) => {
                return Outcome::fail(format!(
                    "previous TPM call still hung ({label}, {}s ago); not starting another",
                    since.elapsed().as_secs()
                ));
            }
        };
        let job = Job { conf, label: label.clone(), device, banks: self.banks.clone(), self_test: self.self_test };
        // A plain thread rather than `spawn_blocking`: the runtime waits for its blocking
        // pool when it shuts down, so one call stuck in the TSS would keep `bootgate check`
        // (and a stopping daemon) from exiting. A detached thread ends with the process.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new().name("bootgate-tpm".into()).spawn(move || {
            let _claim = claim;
            let _ = tx.send(job.run());
        });
        if let Err(e) = spawned {
            return Outcome::fail(format!("cannot start a thread for the TPM call: {e}"));
        }
        // On timeout the thread is left to finish on its own; the claim it holds keeps
        // later attempts from stacking more threads behind it.
        match tokio::time::timeout(ctx.remaining(), rx).await {
            Ok(Ok(Ok(reading))) => self.judge(&label, reading),
            Ok(Ok(Err(message))) => Outcome::fail(message),
            Ok(Err(_)) => Outcome::fail(format!("the TPM call to {label} crashed without an answer")),
            Err(_) => Outcome::fail(format!(
                "TPM at {label} did not answer: timed out after {}",
                crate::util::time::spelled(ctx.limit)
            )),
        }
    }

    fn judge(&self, label: &str, r: Reading) -> Outcome {
        let zeros: Vec<String> = r
            .pcrs
            .iter()
            .filter(|(_, index, value)| self.nonzero.contains(index) && value.iter().all(|&b| b == 0))
            .map(|(bank, index, _)| format!("PCR {index} ({bank})"))
            .collect();
        let count = r.pcrs.len();
        let banks: Vec<String> = self.banks.iter().map(|(b, _)| b.to_string()).collect();
        let mut out = if zeros.is_empty() {
            let test = if self.self_test { ", self-test passed" } else { "" };
            Outcome::pass(format!(
                "{} TPM {} at {label}, firmware {}; {count} PCRs read ({}){test}",
                r.manufacturer,
                r.family,
                r.firmware,
                banks.join(", ")
            ))
        } else {
            let verb = if zeros.len() == 1 { "is" } else { "are" };
            Outcome::fail(format!("{} {verb} all zeros: nothing was measured into it", zeros.join(", ")))
        };
        out = out
            .with("present", true)
            .with("manufacturer", r.manufacturer)
            .with("vendor", r.vendor)
            .with("firmware_version", r.firmware)
            .with("version", r.family.clone())
            .with("family", r.family);
        for (bank, index, value) in r.pcrs {
            out = out.with(&format!("pcr_{bank}_{index}"), hex(&value));
        }
        out
    }
}

/// [`usable_device`] on the blocking pool, within the attempt's time: opening a device
/// node is a system call a stuck driver can hold, and it must not hold the thread the
/// other checks run on (`bootgate check` runs them all on one).
async fn opened(paths: Vec<PathBuf>, ctx: &RunCtx) -> Result<Result<PathBuf, Vec<String>>, String> {
    let open = tokio::task::spawn_blocking(move || usable_device(&paths).cloned());
    match tokio::time::timeout(ctx.remaining(), open).await {
        Ok(Ok(found)) => Ok(found),
        Ok(Err(_)) => Err("opening the TPM device crashed".into()),
        Err(_) => Err(format!(
            "opening the TPM device did not return: timed out after {}",
            crate::util::time::spelled(ctx.limit)
        )),
    }
}

/// The first device node that opens for reading and writing, or why each present one
/// did not. Debian's udev rules give `/dev/tpmrm0` to tss:tss 0660, which root without
/// CAP_DAC_OVERRIDE (as in the hardened unit) cannot open, while `/dev/tpm0` stays
/// open to root's group: so a refused node falls through to the next, not only a missing one.
fn usable_device(paths: &[PathBuf]) -> Result<&PathBuf, Vec<String>> {
    let mut refused = Vec::new();
    for path in paths {
        match std::fs::OpenOptions::new().read(true).write(true).open(path) {
            Ok(_) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => refused.push(format!("{}: {e}", path.display())),
        }
    }
    Err(refused)
}

fn device_conf(path: &Path) -> Result<TctiNameConf, String> {
    let text = path.to_str().ok_or_else(|| format!("TPM device path {} is not UTF-8", path.display()))?;
    DeviceConfig::from_str(text).map(TctiNameConf::Device).map_err(|e| format!("TPM device {text}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Check for Tpm {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(self.attempt(ctx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(yaml: &str) -> Result<Tpm, KeyError> {
        Tpm::build(serde_yaml::from_str(yaml).expect("keys parse"))
    }

    #[test]
    fn defaults_read_sha256_0_to_7_from_the_usual_devices() {
        let tpm = build("{}").unwrap();
        assert_eq!(tpm.banks, vec![(Bank::Sha256, (0..8).collect())]);
        assert!(matches!(&tpm.target, Target::Devices(d) if d.len() == 2 && d[0] == Path::new("/dev/tpmrm0")));
        assert_eq!(tpm.absent, Absent::Fail);
    }

    #[test]
    fn nonzero_pcrs_are_read_in_every_bank() {
        let tpm = build("{pcrs: {sha1: [0], sha256: [1, 1]}, pcrs_nonzero: [7]}").unwrap();
        assert_eq!(tpm.banks, vec![(Bank::Sha1, vec![0, 7]), (Bank::Sha256, vec![1, 7])]);
    }

    #[test]
    fn bad_keys_are_located() {
        let err = build("{tcti: 'swtpm:port=notaport'}").unwrap_err();
        assert_eq!(err.key, vec![Seg::key("tcti")]);
        assert!(err.message.contains("not a usable TCTI"), "{}", err.message);
        assert!(build("{tcti: 'nosuch:thing'}").is_err());
        assert!(build("{tcti: 'swtpm:host=127.0.0.1,port=2321'}").is_ok());
        let err = build("{pcrs: {sha256: [0, 24]}}").unwrap_err();
        assert_eq!(err.key, vec![Seg::key("pcrs"), Seg::key("sha256")]);
        assert!(build("{pcrs_nonzero: [30]}").is_err());
        assert!(build("{device: /dev/tpm0, tcti: 'device:/dev/tpm0'}").is_err());
        assert!(build("{device: dev/tpm0}").is_err());
    }

    #[test]
    fn a_refused_device_falls_through_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let (refused, usable, missing) = (dir.path().join("tpmrm0"), dir.path().join("tpm0"), dir.path().join("none"));
        // A directory stands in for a node that exists but cannot be opened for writing.
        std::fs::create_dir(&refused).unwrap();
        std::fs::write(&usable, b"").unwrap();
        let paths = vec![missing.clone(), refused.clone(), usable.clone()];
        assert_eq!(usable_device(&paths), Ok(&usable));
        let only_refused = vec![missing.clone(), refused.clone()];
        let reasons = usable_device(&only_refused).unwrap_err();
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].starts_with(&refused.display().to_string()), "{reasons:?}");
        assert_eq!(usable_device(&[missing]), Err(vec![]));
        assert!(build("{tcti: 'swtpm:', absent: pass}").is_err());
        assert!(serde_yaml::from_str::<Keys>("{pcrs: {md5: [0]}}").is_err());
    }

    #[test]
    fn one_blocking_call_at_a_time() {
        let slot = Arc::<InFlight>::default();
        let first = slot.claim().unwrap_or_else(|_| panic!("the slot starts free"));
        assert!(slot.claim().is_err());
        drop(first);
        assert!(slot.claim().is_ok());
    }
}
