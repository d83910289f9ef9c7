//! TCTI strings from the policy. tss-esapi's own parser compiles up to six regular
//! expressions per call, about 2 ms of CPU before the first check could start; so the
//! policy is checked here by the same grammar without them, and the library parses the
//! configuration part (two expressions for a network TCTI, none for a device) once, on
//! the TPM thread of the first attempt.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::OnceLock;

use tss_esapi::tcti_ldr::{DeviceConfig, NetworkTPMConfig, TabrmdConfig, TctiNameConf};

/// A TCTI string that tss-esapi accepts, parsed by it when first needed.
#[derive(Debug)]
pub struct Tcti {
    text: String,
    conf: OnceLock<TctiNameConf>,
}

impl Tcti {
    /// Checks `text` as tss-esapi would parse and render it; the error says why not.
    pub fn new(text: &str) -> Result<Self, &'static str> {
        check(text)?;
        Ok(Tcti { text: text.to_string(), conf: OnceLock::new() })
    }

    /// The string as the policy wrote it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The library's configuration; parsed on the first call only.
    pub fn conf(&self) -> Result<TctiNameConf, String> {
        if let Some(conf) = self.conf.get() {
            return Ok(conf.clone());
        }
        let (name, config) = self.text.split_once(':').unwrap_or((&self.text, ""));
        let conf = match name {
            "device" => DeviceConfig::from_str(config).map(TctiNameConf::Device),
            "mssim" => NetworkTPMConfig::from_str(config).map(TctiNameConf::Mssim),
            "swtpm" => NetworkTPMConfig::from_str(config).map(TctiNameConf::Swtpm),
            _ => TabrmdConfig::from_str(config).map(TctiNameConf::Tabrmd),
        };
        let conf = conf.map_err(|e| format!("TCTI `{}`: {e}", self.text))?;
        Ok(self.conf.get_or_init(|| conf).clone())
    }
}

/// tss-esapi's grammar: `NAME[:CONFIG]` where NAME is device, mssim, swtpm or tabrmd
/// (no newline anywhere), the config of a network TCTI takes `host=` and `port=`, and of
/// tabrmd `bus_name=` and `bus_type=`, each the first of its key in a comma-separated list.
fn check(text: &str) -> Result<(), &'static str> {
    if text.contains('\n') {
        return Err("no known TCTI name");
    }
    let (name, config) = text.split_once(':').unwrap_or((text, ""));
    match name {
        // The path is rendered into a C string for the loader.
        "device" if config.contains('\0') => Err("the device path holds a NUL byte"),
        "device" => Ok(()),
        "mssim" | "swtpm" => network(config),
        "tabrmd" => tabrmd(config),
        _ => Err("no known TCTI name"),
    }
}

/// The value of the first `key=` among the comma-separated items.
fn value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config.split(',').find_map(|item| item.strip_prefix(key)?.strip_prefix('='))
}

fn network(config: &str) -> Result<(), &'static str> {
    if let Some(host) = value(config, "host")
        && IpAddr::from_str(host).is_err()
        && !hostname_validator::is_valid(host)
    {
        return Err("the host is neither an IP address nor a host name");
    }
    if let Some(port) = value(config, "port")
        && port.parse::<u16>().is_err()
    {
        return Err("the port is not a number from 0 to 65535");
    }
    Ok(())
}

fn tabrmd(config: &str) -> Result<(), &'static str> {
    if let Some(bus) = value(config, "bus_name") {
        let label = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let mut labels = bus.split('.');
        if !(labels.clone().count() >= 2 && labels.all(label)) {
            return Err("the bus name is not a D-Bus name like com.intel.tss2.Tabrmd");
        }
    }
    match value(config, "bus_type") {
        None | Some("system" | "session") => Ok(()),
        Some(_) => Err("the bus type is neither system nor session"),
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;

    use super::*;

    /// What tss-esapi itself says: parsed, then rendered for the loader.
    fn library_accepts(text: &str) -> bool {
        TctiNameConf::from_str(text).and_then(CString::try_from).is_ok()
    }

    #[test]
    fn accepts_exactly_what_tss_esapi_accepts() {
        let cases = [
            "device",
            "device:",
            "device:/dev/tpmrm0",
            "device:/dev/\0x",
            "devicex",
            "swtpm",
            "swtpm:",
            "swtpm:host=127.0.0.1,port=2321",
            "swtpm:port=2321,host=::1",
            "swtpm:host=localhost",
            "swtpm:host=tpm.example-1.lan,other=1",
            "swtpm:port=notaport",
            "swtpm:port=65536",
            "swtpm:port=",
            "swtpm:host=",
            "swtpm:host=-bad",
            "swtpm:host=a_b",
            "swtpm:host=a..b",
            "swtpm:xhost=-bad,host=ok",
            "swtpm:host=ok,host=-bad",
            "swtpm:a,,port=1",
            "swtpm:host=127.0.0.1\n",
            "mssim:host=10.0.0.1,port=1",
            "mssim:port=x",
            "tabrmd",
            "tabrmd:bus_name=com.intel.tss2.Tabrmd,bus_type=session",
            "tabrmd:bus_name=single",
            "tabrmd:bus_name=a..b",
            "tabrmd:bus_name=a.b-c_d.e1",
            "tabrmd:bus_type=user",
            "tabrmd:bus_type=system,bus_name=x.y",
            "nosuch:thing",
            "",
            ":",
            "Swtpm:port=1",
        ];
        for text in cases {
            assert_eq!(check(text).is_ok(), library_accepts(text), "{text:?}: {:?}", check(text));
        }
    }

    #[test]
    fn the_library_parses_once_and_agrees() {
        for text in ["device", "device:/dev/tpmrm0", "mssim:port=1", "swtpm:host=::1", "tabrmd:bus_type=session"] {
            assert_eq!(Tcti::new(text).unwrap().conf().unwrap(), TctiNameConf::from_str(text).unwrap(), "{text}");
        }
        let tcti = Tcti::new("swtpm:host=127.0.0.1,port=2321").unwrap();
        assert_eq!(tcti.conf().unwrap(), TctiNameConf::from_str("swtpm:host=127.0.0.1,port=2321").unwrap());
        assert!(tcti.conf.get().is_some());
        assert_eq!(tcti.conf().unwrap(), tcti.conf().unwrap());
        assert_eq!(tcti.text(), "swtpm:host=127.0.0.1,port=2321");
    }
}
