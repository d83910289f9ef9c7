//! The blocking part of the `tpm` check: one TSS context, its fixed properties,
//! an optional self-test and the PCRs. Runs on a blocking thread only.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tss_esapi::constants::response_code::Tss2ResponseCode;
use tss_esapi::constants::tss::{
    TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA512, TPM2_ALG_SM3_256, TPM2_PT_FAMILY_INDICATOR,
    TPM2_PT_FIRMWARE_VERSION_1, TPM2_PT_FIRMWARE_VERSION_2, TPM2_PT_MANUFACTURER, TPM2_PT_VENDOR_STRING_1,
    TPM2_PT_VENDOR_STRING_2, TPM2_PT_VENDOR_STRING_3, TPM2_PT_VENDOR_STRING_4,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMI_ALG_HASH;

use super::Bank;
use super::esys::{self, Context};
use super::tcti::Tcti;

/// FAMILY_INDICATOR (0x100) up to FIRMWARE_VERSION_2 (0x10C), in one request.
const FIXED_PROPERTIES: u32 = 13;
/// A TPM returns at most this many digests per PCR read.
const DIGESTS_PER_READ: usize = 8;

/// The TCTI of a job: ready, or the policy's, parsed on this thread when first used.
pub(super) enum Conf {
    Ready(TctiNameConf),
    Policy(Arc<Tcti>),
}

impl Conf {
    fn get(&self) -> Result<TctiNameConf, String> {
        match self {
            Conf::Ready(conf) => Ok(conf.clone()),
            Conf::Policy(tcti) => tcti.conf(),
        }
    }
}

/// What to read, moved onto the blocking thread.
pub(super) struct Job {
    pub conf: Conf,
    pub label: String,
    /// The device node, when `conf` opens one: asked again for the OS error on failure.
    pub device: Option<PathBuf>,
    pub banks: Vec<(Bank, Vec<u8>)>,
    pub self_test: bool,
}

/// What the TPM said.
pub(super) struct Reading {
    pub manufacturer: String,
    pub vendor: String,
    pub firmware: String,
    pub family: String,
    /// (bank, index, digest), in bank then index order.
    pub pcrs: Vec<(Bank, u8, Vec<u8>)>,
}

impl Job {
    pub fn run(self) -> Result<Reading, String> {
        let label = &self.label;
        let mut ctx = Context::new(self.conf.get()?).map_err(|e| connect_error(self.device.as_deref(), label, &e))?;
        let props = ctx
            .properties(TPM2_PT_FAMILY_INDICATOR, FIXED_PROPERTIES)
            .map_err(|e| format!("TPM at {label}: cannot read its properties: {e}"))?;
        let prop = |tag| props.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
        let text = |tags: &[u32]| ascii(&tags.iter().filter_map(|&t| prop(t)).collect::<Vec<_>>());
        let firmware = match (prop(TPM2_PT_FIRMWARE_VERSION_1), prop(TPM2_PT_FIRMWARE_VERSION_2)) {
            (Some(a), Some(b)) => format!("{}.{}.{}.{}", a >> 16, a & 0xffff, b >> 16, b & 0xffff),
            _ => "unknown".into(),
        };
        let vendor =
            [TPM2_PT_VENDOR_STRING_1, TPM2_PT_VENDOR_STRING_2, TPM2_PT_VENDOR_STRING_3, TPM2_PT_VENDOR_STRING_4];
        let mut reading = Reading {
            manufacturer: text(&[TPM2_PT_MANUFACTURER]),
            vendor: text(&vendor),
            firmware,
            family: text(&[TPM2_PT_FAMILY_INDICATOR]),
            pcrs: Vec::new(),
        };
        if self.self_test {
            ctx.self_test(false).map_err(|e| format!("TPM at {label}: self-test failed: {e}"))?;
            let result = ctx.test_result().map_err(|e| format!("TPM at {label}: no self-test result: {e}"))?;
            result.map_err(|e| format!("TPM at {label}: self-test failed: {e}"))?;
        }
        for (bank, indices) in &self.banks {
            read_bank(&mut ctx, *bank, indices, &mut reading.pcrs).map_err(|e| format!("TPM at {label}: {e}"))?;
        }
        Ok(reading)
    }
}

/// The TSS says little about why a connection failed; the OS error says more.
fn connect_error(device: Option<&Path>, label: &str, e: &esys::Error) -> String {
    let esys::Error::Tss(e) = e else {
        return format!("cannot connect to TPM at {label}: {e}");
    };
    let open = |path| std::fs::OpenOptions::new().read(true).write(true).open(path);
    let why = match device {
        Some(path) => open(path).err().map(|os| os.to_string()),
        None => network_address(label).and_then(|(host, port)| probe(&host, port)),
    };
    let why = why.map(|w| format!("{w}; ")).unwrap_or_default();
    format!("cannot connect to TPM at {label}: {why}{}", describe(e))
}

/// Host and port of a `swtpm:` or `mssim:` TCTI string, with the TSS defaults.
fn network_address(tcti: &str) -> Option<(String, u16)> {
    let conf = tcti.strip_prefix("swtpm").or_else(|| tcti.strip_prefix("mssim"))?;
    let conf = conf.strip_prefix(':').unwrap_or(conf);
    let (mut host, mut port) = ("localhost".to_string(), 2321);
    for part in conf.split(',') {
        match part.split_once('=') {
            Some(("host", h)) => host = h.to_string(),
            Some(("port", p)) => port = p.parse().ok()?,
            _ => {}
        }
    }
    Some((host, port))
}

/// Why a TCP connection to the TPM simulator fails, if it does.
fn probe(host: &str, port: u16) -> Option<String> {
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).err().map(|e| e.to_string())
}

/// tss-esapi 7 only names TPM response codes; TSS layers (TCTI, ESAPI …) get their name here.
pub(super) fn describe(e: &tss_esapi::Error) -> String {
    let tss_esapi::Error::Tss2Error(rc) = e else {
        return e.to_string();
    };
    let raw = match rc {
        Tss2ResponseCode::FormatZero(z) if rc.kind().is_none() => z.to_string(),
        Tss2ResponseCode::FormatOne(o) if rc.kind().is_none() => o.to_string(),
        _ => return e.to_string(),
    };
    // Their Display is "Response code value: 0x…", the only way to the raw code.
    match raw.rsplit_once("0x").and_then(|(_, hex)| u32::from_str_radix(hex, 16).ok()) {
        Some(code) => tss_rc_text(code),
        None => raw,
    }
}

/// Names a TSS2_RC from its layer (bits 16–23) and base code (bits 0–15).
pub(super) fn tss_rc_text(code: u32) -> String {
    let layer = match code >> 16 {
        0 => "TPM",
        6 => "feature API",
        7 => "ESAPI",
        8 => "SAPI",
        9 => "marshalling",
        10 => "TCTI",
        11 => "resource manager",
        12 => "resource manager (TPM)",
        _ => "TSS",
    };
    let base = match code & 0xffff {
        1 => "general failure",
        2 => "not implemented",
        3 => "bad context",
        4 => "ABI mismatch",
        5 => "bad reference",
        6 => "insufficient buffer",
        7 => "bad sequence",
        8 => "no connection",
        9 => "try again",
        10 => "I/O error",
        11 => "bad value",
        12 => "not permitted",
        16 => "bad size",
        17 => "malformed response",
        19 => "insufficient response",
        20 => "incompatible TCTI",
        21 => "not supported",
        22 => "bad TCTI structure",
        23 => "out of memory",
        _ => "error",
    };
    format!("{layer} {base} (0x{code:08x})")
}

/// Reads `indices` of one bank, at most [`DIGESTS_PER_READ`] a call.
fn read_bank(ctx: &mut Context, bank: Bank, indices: &[u8], out: &mut Vec<(Bank, u8, Vec<u8>)>) -> Result<(), String> {
    let alg = algorithm(bank);
    let mut left: Vec<u8> = indices.to_vec();
    while !left.is_empty() {
        let asked = &left[..left.len().min(DIGESTS_PER_READ)];
        let got = ctx.pcr_read(alg, asked).map_err(|e| format!("cannot read {bank} PCRs: {e}"))?;
        if got.is_empty() {
            return Err(format!("the TPM has no {bank} PCR bank (PCRs {left:?} not readable)"));
        }
        for (index, digest) in got {
            out.push((bank, index, digest));
            left.retain(|&i| i != index);
        }
    }
    out.sort_by_key(|(b, i, _)| (*b, *i));
    Ok(())
}

fn algorithm(bank: Bank) -> TPMI_ALG_HASH {
    match bank {
        Bank::Sha1 => TPM2_ALG_SHA1,
        Bank::Sha256 => TPM2_ALG_SHA256,
        Bank::Sha384 => TPM2_ALG_SHA384,
        Bank::Sha512 => TPM2_ALG_SHA512,
        Bank::Sm3 => TPM2_ALG_SM3_256,
    }
}

/// TPM text properties are big-endian ASCII packed four bytes a word, NUL or space padded.
pub(super) fn ascii(words: &[u32]) -> String {
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).filter(|&b| b != 0).collect();
    String::from_utf8_lossy(&bytes).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn property_words_decode_as_trimmed_ascii() {
        assert_eq!(ascii(&[0x4942_4D00]), "IBM");
        assert_eq!(ascii(&[0x4946_5800]), "IFX");
        assert_eq!(ascii(&[0x322E_3000]), "2.0");
        assert_eq!(ascii(&[0x5357_2020, 0x2054_504D, 0, 0]), "SW   TPM");
        assert_eq!(ascii(&[]), "");
    }

    #[test]
    fn tss_layer_codes_are_named() {
        assert_eq!(tss_rc_text(0x000a_000a), "TCTI I/O error (0x000a000a)");
        assert_eq!(tss_rc_text(0x0007_0001), "ESAPI general failure (0x00070001)");
    }

    #[test]
    fn network_tcti_addresses() {
        assert_eq!(network_address("swtpm:host=127.0.0.1,port=2400"), Some(("127.0.0.1".into(), 2400)));
        assert_eq!(network_address("mssim:port=2500"), Some(("localhost".into(), 2500)));
        assert_eq!(network_address("swtpm"), Some(("localhost".into(), 2321)));
        assert_eq!(network_address("device:/dev/tpm0"), None);
    }
}
