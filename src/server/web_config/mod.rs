//! The web configuration file of Prometheus' exporter-toolkit (`server.web_config`,
//! `--web-config`): TLS, client certificates and basic auth users for the endpoint, in the
//! file format node_exporter reads, so a fleet reuses the files it already holds.
//!
//! Read like the policy, in two stages: [`raw`] is the file as written, unknown keys
//! refused and every problem located by the policy's YAML locator; [`validate`] turns it
//! into a [`WebConfig`] that holds only usable values, the certificate, key and CA already
//! read and checked. The TLS accept (`super::tls`) and basic auth (`super::auth`) work
//! from a [`WebConfig`] only; `bootgate validate` and a reload use [`load`] as the daemon does.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::SupportedKxGroup;
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, SupportedCipherSuite, SupportedProtocolVersion};

pub use raw::ClientAuth;

use crate::policy::{MAX_POLICY_BYTES, Problem, listing};

pub mod files;
pub mod raw;
mod validate;

/// A validated web config.
#[derive(Debug)]
pub struct WebConfig {
    /// `None`: plain HTTP (no `tls_server_config`, or an empty one, as exporter-toolkit reads it).
    pub tls: Option<Tls>,
    /// Extra response headers of `http_server_config.headers`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `basic_auth_users`; empty: no authentication.
    pub users: Users,
}

/// What the TLS accept needs, every file already read.
pub struct Tls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The certificate chain and its key, known to match.
    pub key: Arc<CertifiedKey>,
    pub client_auth: ClientAuth,
    /// The roots of `client_ca_file`, present exactly when `client_auth` verifies.
    pub client_roots: Option<Arc<RootCertStore>>,
    /// `client_allowed_sans`; empty: any certificate `client_auth` accepts.
    pub allowed_sans: Vec<String>,
    /// The protocol versions between `min_version` and `max_version` that rustls speaks.
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// TLS 1.3's suites, then `cipher_suites` (TLS 1.2) in their order, or every suite.
    pub cipher_suites: Vec<SupportedCipherSuite>,
    /// `curve_preferences`, or every group in the provider's order.
    pub kx_groups: Vec<&'static dyn SupportedKxGroup>,
    /// `prefer_server_cipher_suites` (default true).
    pub prefer_server_order: bool,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // The key never reaches a log line, not even in a debug dump.
        f.debug_struct("Tls")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("client_auth", &self.client_auth)
            .field("client_ca", &self.client_roots.as_ref().map(|r| r.len()))
            .field("allowed_sans", &self.allowed_sans)
            .field("versions", &self.versions)
            .finish_non_exhaustive()
    }
}

/// `basic_auth_users`: name → bcrypt hash, each hash known to be one.
#[derive(Default)]
pub struct Users(BTreeMap<String, String>);

impl Users {
    /// Whether no user is configured (no authentication).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One of the hashes, to spend a bcrypt on when a name is unknown.
    pub fn any_hash(&self) -> Option<&str> {
        self.0.values().next().map(String::as_str)
    }

    /// How many users are configured.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The bcrypt hash of `name`'s password.
    pub fn hash(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

impl fmt::Debug for Users {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        // Names only: a hash is as good as a password to an offline attack.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// Why no web config could be used. The endpoint stays down on every variant; the gate goes on.
#[derive(Debug, thiserror::Error)]
pub enum WebConfigError {
    #[error("cannot read web config {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("invalid web config {file}:\n{}", listing(problems))]
    Invalid { file: String, problems: Vec<Problem> },
}

/// Reads and validates the web config at `path`; relative file names in it are taken from its directory.
pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
    let label = path.display().to_string();
    let bytes = crate::util::read::read_regular(path, MAX_POLICY_BYTES)
        .map_err(|source| WebConfigError::Read { path: label.clone(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let source = std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error());
        WebConfigError::Read { path: label.clone(), source }
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, &label, dir)
}

/// Validates web config text; `file` names it in problems, `dir` anchors relative paths.
pub fn parse(text: &str, file: &str, dir: &Path) -> Result<WebConfig, WebConfigError> {
    validate::validate(text, file, dir).map_err(|problems| WebConfigError::Invalid { file: file.into(), problems })
}
