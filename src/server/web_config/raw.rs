//! The web configuration file as written, in exporter-toolkit's key names; every
//! unknown key is refused, so a typo never leaves the endpoint open.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::types::FsPath;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `tls_server_config`, `http_server_config` and `basic_auth_users`"
)]
pub struct RawWebConfig {
    pub tls_server_config: Option<RawTls>,
    pub http_server_config: Option<RawHttp>,
    /// User name → bcrypt hash of the password.
    pub basic_auth_users: Option<BTreeMap<String, String>>,
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of TLS settings")]
pub struct RawTls {
    pub cert_file: Option<FsPath>,
    pub key_file: Option<FsPath>,
    pub client_auth_type: Option<ClientAuth>,
    pub client_ca_file: Option<FsPath>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    pub cipher_suites: Option<Vec<String>>,
    pub curve_preferences: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub client_allowed_sans: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping of HTTP settings")]
pub struct RawHttp {
    pub http2: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// `client_auth_type`, as Go's `crypto/tls` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ClientAuth {
    /// Never asks for a client certificate (also written as an empty string).
    #[default]
    #[serde(alias = "")]
    NoClientCert,
    /// Asks for one and takes any, or none.
    RequestClientCert,
    /// Requires one, of any issuer.
    RequireAnyClientCert,
    /// Verifies one against `client_ca_file` when given.
    VerifyClientCertIfGiven,
    /// Requires one that `client_ca_file` verifies.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    /// Whether a certificate is checked against `client_ca_file`.
    pub fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert)
    }
}

/// `min_version` and `max_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "TLS10")]
    Tls10,
    #[serde(rename = "TLS11")]
    Tls11,
    #[serde(rename = "TLS12")]
    Tls12,
    #[serde(rename = "TLS13")]
    Tls13,
}

impl TlsVersion {
    /// The name as the file writes it.
    pub fn name(self) -> &'static str {
        match self {
            TlsVersion::Tls10 => "TLS10",
            TlsVersion::Tls11 => "TLS11",
            TlsVersion::Tls12 => "TLS12",
            TlsVersion::Tls13 => "TLS13",
        }
    }
}
