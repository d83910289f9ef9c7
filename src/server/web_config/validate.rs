//! Raw web config → [`WebConfig`], with exporter-toolkit's rules: an empty
//! `tls_server_config` means plain HTTP, a verifying `client_auth_type` needs
//! `client_ca_file` and only it may have one, relative paths start at the file's directory.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, ring};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use serde_yaml::Value;

use super::raw::{ClientAuth, RawHttp, RawTls, RawWebConfig, TlsVersion};
use super::{Tls, Users, WebConfig, files};
use crate::policy::located::Ctx;
use crate::policy::yaml::Seg;
use crate::policy::yaml::index::Index;
use crate::policy::{MAX_POLICY_BYTES, Problem};
use crate::util::redact::quote;

/// The headers exporter-toolkit lets `http_server_config.headers` set (names are case-blind).
const HEADERS: [&str; 5] = [
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "x-xss-protection",
    "content-security-policy",
];

/// `curve_preferences` in Go's names, and rustls' group for each (`None`: not offered here).
const CURVES: [(&str, Option<&dyn SupportedKxGroup>); 4] = [
    ("X25519", Some(ring::kx_group::X25519)),
    ("CurveP256", Some(ring::kx_group::SECP256R1)),
    ("CurveP384", Some(ring::kx_group::SECP384R1)),
    ("CurveP521", None),
];

/// Validates web config text into a [`WebConfig`] or every problem found.
pub fn validate(text: &str, file: &str, dir: &Path) -> Result<WebConfig, Vec<Problem>> {
    let first =
        |line, column, key: String, message: String| vec![Problem { file: file.into(), line, column, key, message }];
    if text.len() as u64 > MAX_POLICY_BYTES {
        let message = format!("the web config is larger than the limit of {MAX_POLICY_BYTES} bytes");
        return Err(first(1, 1, String::new(), message));
    }
    let index = Index::build(text).map_err(|o| first(o.line, o.column, o.key, o.message))?;
    let mut cx = Ctx { index: &index, file, problems: Vec::new() };
    let doc: Value = match serde_yaml::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            cx.document(&e);
            return Err(sorted(cx.problems));
        }
    };
    let raw = sections(&mut cx, &doc);
    let tls = raw.tls_server_config.and_then(|t| tls(&mut cx, t, dir));
    let headers = raw.http_server_config.map(|h| headers(&mut cx, h)).unwrap_or_default();
    let users = users(&mut cx, raw.basic_auth_users.unwrap_or_default());
    if cx.problems.is_empty() { Ok(WebConfig { tls, headers, users }) } else { Err(sorted(cx.problems)) }
}

/// Reads each top-level section on its own, so a problem in one does not hide the others'.
fn sections(cx: &mut Ctx, doc: &Value) -> RawWebConfig {
    let mut raw = RawWebConfig::default();
    // An empty file is an empty config: plain HTTP, no users, as exporter-toolkit reads it.
    let Some(map) = doc.as_mapping() else {
        if !doc.is_null() {
            cx.typed::<RawWebConfig>(doc, &[]);
        }
        return raw;
    };
    for (key, node) in map {
        let name = key.as_str().unwrap_or("?");
        let path = [Seg::key(name)];
        match name {
            "tls_server_config" => raw.tls_server_config = cx.typed(node, &path).flatten(),
            "http_server_config" => raw.http_server_config = cx.typed(node, &path).flatten(),
            "basic_auth_users" => raw.basic_auth_users = cx.typed(node, &path).flatten(),
            other => cx.at_key(
                &path,
                format!(
                    "unknown field `{}`, expected one of `tls_server_config`, `http_server_config`, `basic_auth_users`",
                    quote(other)
                ),
            ),
        }
    }
    raw
}

/// Problems in the order they appear in the file.
fn sorted(mut problems: Vec<Problem>) -> Vec<Problem> {
    problems.sort_by_key(|p| (p.line, p.column));
    problems
}

fn at(key: &str) -> [Seg; 2] {
    [Seg::key("tls_server_config"), Seg::key(key)]
}

fn tls(cx: &mut Ctx, t: RawTls, dir: &Path) -> Option<Tls> {
    let client_auth = t.client_auth_type.unwrap_or_default();
    let in_dir = |p: crate::policy::types::FsPath| dir.join(p.0);
    let (cert_file, key_file) = match (t.cert_file.map(in_dir), t.key_file.map(in_dir)) {
        (Some(cert), Some(key)) => (cert, key),
        (None, None) if t.client_ca_file.is_none() && client_auth == ClientAuth::NoClientCert => return None,
        (cert, _) => {
            let missing = if cert.is_none() { "cert_file" } else { "key_file" };
            cx.at(&[Seg::key("tls_server_config")], format!("missing field `{missing}`"));
            return None;
        }
    };
    let client_ca_file = t.client_ca_file.map(in_dir);
    let client_roots = match (&client_ca_file, client_auth.verifies()) {
        (Some(ca), true) => files::client_roots(ca).map_err(|e| cx.at(&at("client_ca_file"), e)).ok(),
        (None, true) => {
            cx.at(
                &at("client_auth_type"),
                format!("{client_auth:?} needs `client_ca_file` to verify certificates with"),
            );
            None
        }
        (Some(_), false) => {
            let message = format!(
                "`client_ca_file` is only used by VerifyClientCertIfGiven and RequireAndVerifyClientCert, not {client_auth:?}"
            );
            cx.at(&at("client_ca_file"), message);
            None
        }
        (None, false) => None,
    };
    let allowed_sans = t.client_allowed_sans.map(|sans| allowed_sans(cx, sans, client_auth)).unwrap_or_default();
    let provider = ring::default_provider();
    let key = files::certified_key(&cert_file, &key_file, &provider).map_err(|e| cx.at(&at("cert_file"), e)).ok();
    let versions = versions(cx, t.min_version, t.max_version);
    let cipher_suites = cipher_suites(cx, &provider, t.cipher_suites.as_deref());
    let kx_groups = kx_groups(cx, &provider, t.curve_preferences.as_deref());
    Some(Tls {
        cert_file,
        key_file,
        key: key?,
        client_auth,
        client_roots,
        allowed_sans,
        versions,
        cipher_suites,
        kx_groups,
        prefer_server_order: t.prefer_server_cipher_suites.unwrap_or(true),
    })
}

/// `client_allowed_sans`, as exporter-toolkit matches them: a DNS name, IP address or URI
/// of the client certificate equal to one of them. An e-mail address cannot be matched here.
fn allowed_sans(cx: &mut Ctx, sans: Vec<String>, client_auth: ClientAuth) -> Vec<String> {
    let key = at("client_allowed_sans");
    if client_auth == ClientAuth::NoClientCert {
        cx.at(&key, "needs a client_auth_type that asks for a certificate (RequireAndVerifyClientCert)");
    } else if sans.is_empty() {
        cx.at(&key, "an empty list lets no client in; name the SANs, or remove the key");
    }
    for san in &sans {
        if san.contains('@') && !san.contains("://") {
            cx.at(
                &key,
                format!(
                    "{}: e-mail SANs cannot be matched by this bootgate; use a DNS name, IP address or URI",
                    quote(san)
                ),
            );
        }
    }
    sans
}

/// The versions rustls speaks between `min` (default TLS12) and `max` (default TLS13).
fn versions(cx: &mut Ctx, min: Option<TlsVersion>, max: Option<TlsVersion>) -> Vec<&'static SupportedProtocolVersion> {
    let (min, max) = (min.unwrap_or(TlsVersion::Tls12), max.unwrap_or(TlsVersion::Tls13));
    if max < TlsVersion::Tls12 {
        cx.at(&at("max_version"), "this bootgate speaks TLS 1.2 and 1.3 only; write TLS12 or TLS13");
    } else if min > max {
        cx.at(&at("min_version"), format!("{} is above max_version {}", min.name(), max.name()));
    }
    // TLS 1.0 and 1.1 are never offered: a lower minimum only means TLS 1.2.
    [(TlsVersion::Tls12, &rustls::version::TLS12), (TlsVersion::Tls13, &rustls::version::TLS13)]
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, p)| p)
        .collect()
}

/// TLS 1.3's suites (Go does not let them be chosen either), then the named TLS 1.2 suites.
fn cipher_suites(cx: &mut Ctx, provider: &CryptoProvider, names: Option<&[String]>) -> Vec<SupportedCipherSuite> {
    let Some(names) = names else { return provider.cipher_suites.clone() };
    let tls12: Vec<(String, SupportedCipherSuite)> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS12)
        .map(|s| (format!("{:?}", s.suite()), *s))
        .collect();
    let mut chosen: Vec<SupportedCipherSuite> =
        provider.cipher_suites.iter().filter(|s| s.version() == &rustls::version::TLS13).copied().collect();
    for (i, name) in names.iter().enumerate() {
        // Go also names the ChaCha20 suites without their `_SHA256`.
        match tls12.iter().find(|(n, _)| n == name || *n == format!("{name}_SHA256")) {
            Some((_, suite)) => chosen.push(*suite),
            None => {
                let known = tls12.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ");
                let path = [Seg::key("tls_server_config"), Seg::key("cipher_suites"), Seg::Index(i)];
                cx.at(&path, format!("`{}` is not a TLS 1.2 suite this bootgate offers; one of {known}", quote(name)));
            }
        }
    }
    chosen
}

/// The groups of `curve_preferences` in their order, or the provider's.
fn kx_groups(cx: &mut Ctx, provider: &CryptoProvider, names: Option<&[String]>) -> Vec<&'static dyn SupportedKxGroup> {
    let Some(names) = names else { return provider.kx_groups.clone() };
    let mut groups = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let path = [Seg::key("tls_server_config"), Seg::key("curve_preferences"), Seg::Index(i)];
        match CURVES.iter().find(|(n, _)| n == name) {
            Some((_, Some(group))) => groups.push(*group),
            Some((_, None)) => {
                cx.at(&path, format!("{name} is not offered by this bootgate; use X25519, CurveP256 or CurveP384"))
            }
            None => cx
                .at(&path, format!("`{}` is not a curve; one of X25519, CurveP256, CurveP384, CurveP521", quote(name))),
        }
    }
    groups
}

fn headers(cx: &mut Ctx, h: RawHttp) -> Vec<(HeaderName, HeaderValue)> {
    // `http2` is accepted and has no effect: the endpoint answers HTTP/1.1.
    let mut out = Vec::new();
    for (name, value) in h.headers.unwrap_or_default() {
        let path = [Seg::key("http_server_config"), Seg::key("headers"), Seg::key(&name)];
        let Some(known) = HEADERS.iter().find(|k| k.eq_ignore_ascii_case(&name)) else {
            cx.at_key(&path, format!("`{}` cannot be set; one of {}", quote(&name), HEADERS.join(", ")));
            continue;
        };
        match HeaderValue::from_str(&value) {
            Ok(value) => out.push((HeaderName::from_static(known), value)),
            Err(_) => cx.at(&path, "not a valid header value (control characters?)"),
        }
    }
    out
}

fn users(cx: &mut Ctx, raw: BTreeMap<String, String>) -> Users {
    for (name, hash) in &raw {
        let path = [Seg::key("basic_auth_users"), Seg::key(name)];
        if name.is_empty() || name.contains(':') || name.chars().any(char::is_control) {
            cx.at_key(&path, "a user name must be non-empty, without `:` or control characters");
        }
        // The hash itself is never repeated: it is as good as the password to an offline attack.
        if bcrypt::HashParts::from_str(hash).is_err() {
            cx.at(
                &path,
                "not a bcrypt hash (`$2y$`, `$2b$` or `$2a$`, a cost and 53 characters; `htpasswd -nBC 10 USER`)",
            );
        }
    }
    Users(raw)
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
