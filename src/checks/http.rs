//! `http`: a request answers with a status in range and, optionally, a body that
//! contains a substring. The basic-auth password is read from a file at each run
//! and never printed.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Method, Url};
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::OnceCell;

use super::{Check, CheckFuture, KeyError, Kind, Outcome, RunCtx, tail};
use crate::policy::types::{FsPath, Str, Text};
use crate::policy::unique::UniqueMap;
use crate::policy::yaml::Seg;
use crate::util::read::read_regular;
use crate::util::redact::{self, quote};
use crate::util::text;

/// How much of a body is searched for `expect_body`.
const BODY_LIMIT: usize = 1 << 20;

/// Keys of an `http` check.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Keys {
    /// `http://` or `https://` URL with a host. Its password and secret query values are masked wherever it is shown.
    #[schemars(schema_with = "crate::policy::schema::http_url")]
    pub url: Text,
    /// Request method (default GET).
    pub method: Option<Text>,
    /// Accepted status: `200`, or a range `200-299` (default).
    pub expect_status: Option<StatusRange>,
    /// A substring the body must contain.
    pub expect_body: Option<Str>,
    /// Extra request headers.
    pub headers: Option<UniqueMap<Str, Str>>,
    /// Basic authentication; the password comes from a file.
    pub basic_auth: Option<BasicAuth>,
    /// Verify the server certificate (default true).
    pub tls_verify: Option<bool>,
    /// PEM file of a CA to trust in addition to the system's.
    pub ca_file: Option<FsPath>,
}

/// Basic-auth credentials.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub user: Text,
    /// File holding the password (a trailing newline is ignored).
    pub password_file: FsPath,
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange(u16, u16);

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.0 == self.1 { write!(f, "{}", self.0) } else { write!(f, "{}-{}", self.0, self.1) }
    }
}

impl FromStr for StatusRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let code = |t: &str| t.trim().parse::<u16>().ok().filter(|c| (100..=599).contains(c));
        let range = match s.split_once('-') {
            Some((a, b)) => code(a).zip(code(b)).map(|(a, b)| StatusRange(a, b)),
            None => code(s).map(|c| StatusRange(c, c)),
        };
        range
            .filter(|r| r.0 <= r.1)
            .ok_or_else(|| format!("`{}` is not a status code or range like `200-299`", quote(s)))
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = StatusRange;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status code or a range like `200-299`")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<StatusRange, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<StatusRange, E> {
                self.visit_str(&n.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<StatusRange, E> {
                self.visit_str(&n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for StatusRange {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusRange".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "oneOf": [
            { "type": "integer", "minimum": 100, "maximum": 599 },
            { "type": "string", "pattern": "^[1-5][0-9]{2}(-[1-5][0-9]{2})?$" }
        ]})
    }
}

/// A validated `http` check.
pub struct Http {
    url: Url,
    /// The URL as every message shows it, its secrets masked (see [`redact::url`]).
    shown: String,
    method: Method,
    expect: StatusRange,
    body: Option<String>,
    headers: HeaderMap,
    auth: Option<BasicAuth>,
    tls_verify: bool,
    ca_file: Option<PathBuf>,
    client: OnceCell<Client>,
}

impl Kind for Http {
    const NAME: &'static str = "http";
    type Keys = Keys;

    fn build(k: Keys) -> Result<Self, KeyError> {
        let url = parse_url(&k.url.0).map_err(|message| KeyError::at("url", message))?;
        let method = match &k.method {
            None => Method::GET,
            // Extension methods are tokens too; a longer one is a mistake, not a method.
            Some(m) if m.0.len() > 20 => {
                return Err(KeyError::at("method", format!("`{}` is not an HTTP method", quote(&m.0))));
            }
            Some(m) => Method::from_bytes(m.0.to_ascii_uppercase().as_bytes())
                .map_err(|_| KeyError::at("method", format!("`{}` is not an HTTP method", quote(&m.0))))?,
        };
        let mut headers = HeaderMap::new();
        for (name, value) in k.headers.iter().flat_map(|h| &h.0) {
            let at = || vec![Seg::key("headers"), Seg::key(&name.0)];
            let n = HeaderName::from_bytes(name.0.as_bytes())
                .map_err(|_| KeyError { key: at(), message: format!("`{}` is not a header name", quote(&name.0)) })?;
            let v = HeaderValue::from_str(&value.0).map_err(|_| KeyError {
                key: at(),
                message: "the value has characters a header cannot carry".into(),
            })?;
            headers.insert(n, v);
        }
        Ok(Http {
            shown: redact::url(url.as_str()),
            url,
            method,
            expect: k.expect_status.unwrap_or(StatusRange(200, 299)),
            body: k.expect_body.map(|b| b.0),
            headers,
            auth: k.basic_auth,
            tls_verify: k.tls_verify.unwrap_or(true),
            ca_file: k.ca_file.map(|p| p.0),
            client: OnceCell::new(),
        })
    }
}

impl Http {
    async fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_try_init(|| shared_client(self.url.scheme() == "https", self.tls_verify, &self.ca_file))
            .await
    }

    async fn attempt(&self, ctx: &RunCtx) -> Result<Outcome, String> {
        let client = self.client().await?;
        let mut req = client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .timeout(ctx.remaining());
        if let Some(auth) = &self.auth {
            let file = &auth.password_file.0;
            let bytes = read_small(file).await.map_err(|e| format!("password_file {}: {e}", file.display()))?;
            let password = String::from_utf8_lossy(&bytes);
            req = req.basic_auth(&auth.user.0, Some(password.trim_end_matches(['\n', '\r'])));
        }
        let started = tokio::time::Instant::now();
        let mut resp = req.send().await.map_err(|e| describe(&self.shown, e))?;
        let status = resp.status();
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        if !(self.expect.0..=self.expect.1).contains(&status.as_u16()) {
            let out = Outcome::fail(format!("{} answered {status}, expected {}", self.shown, self.expect));
            return Ok(out.with("status_code", status.as_u16()).with("response_ms", ms));
        }
        if let Some(want) = &self.body {
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| describe(&self.shown, e))? {
                body.extend_from_slice(&chunk);
                if body.len() >= BODY_LIMIT {
                    break;
                }
            }
            let text = String::from_utf8_lossy(&body);
            if !text.contains(want.as_str()) {
                let msg = format!(
                    "{} answered {status} but the body lacks `{}`; body ends: {}",
                    self.shown,
                    quote(want),
                    tail(&text, 120)
                );
                return Ok(Outcome::fail(msg).with("status_code", status.as_u16()).with("response_ms", ms));
            }
        }
        let out = Outcome::pass(format!("{} answered {status}", self.shown));
        Ok(out.with("status_code", status.as_u16()).with("response_ms", ms))
    }
}

/// reqwest's top-level message is generic ("error sending request"); the cause says why.
/// reqwest puts the URL, password and all, in its message: it is dropped for `shown`.
fn describe(shown: &str, e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        text::with_causes(format!("{shown}: timed out"), &e)
    } else {
        format!("{shown}: {}", text::chain(&e))
    }
}

/// The largest password or CA file read: both are a few KiB at most.
const SMALL_FILE: u64 = 256 << 10;

/// A password or CA file: a regular file only, at most [`SMALL_FILE`], read off the async
/// threads. A FIFO or a device in its place fails the attempt at once instead of holding
/// a thread (or filling memory) until the pool is gone.
async fn read_small(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || read_regular(&path, SMALL_FILE))
        .await
        .map_err(|e| format!("the read ended abnormally: {e}"))?
        .map_err(|e| e.to_string())
}

/// TLS settings that make two clients different.
type ClientKey = (bool, bool, Option<PathBuf>);

/// One client per TLS setting, shared by every check that uses it: loading the system's
/// CA roots costs milliseconds, and a policy may hold dozens of http checks. Each setting
/// is built once, by the first check that needs it; the list is locked only to find or
/// add its cell, never while a file is read, so a CA file that hangs holds up only the
/// checks that name it.
async fn shared_client(https: bool, tls_verify: bool, ca_file: &Option<PathBuf>) -> Result<Client, String> {
    type Cells = Vec<(ClientKey, std::sync::Arc<OnceCell<Client>>)>;
    static CLIENTS: std::sync::Mutex<Cells> = std::sync::Mutex::new(Vec::new());
    let key: ClientKey = (https, tls_verify, ca_file.clone());
    let cell = {
        let mut clients = CLIENTS.lock().unwrap_or_else(|e| e.into_inner());
        match clients.iter().find(|(k, _)| *k == key) {
            Some((_, cell)) => std::sync::Arc::clone(cell),
            None => {
                let cell = std::sync::Arc::new(OnceCell::new());
                clients.push((key, std::sync::Arc::clone(&cell)));
                cell
            }
        }
    };
    cell.get_or_try_init(|| build_client(https, tls_verify, ca_file)).await.cloned()
}

/// A client for one TLS setting.
async fn build_client(https: bool, tls_verify: bool, ca_file: &Option<PathBuf>) -> Result<Client, String> {
    // No proxy: the check proves the direct path. No redirects: a redirect to a login
    // page is an answer worth seeing. No idle pool: each probe opens a fresh connection,
    // as a new client of the service would. Plain http needs no CA roots at all.
    let mut b = Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .tls_built_in_root_certs(https)
        .danger_accept_invalid_certs(!tls_verify);
    if let Some(path) = ca_file {
        let pem = read_small(path).await.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("ca_file {}: {e}", path.display()))?;
        b = b.add_root_certificate(cert);
    }
    b.build().map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// Parses an http(s) URL that names its host in the text itself: the WHATWG parser
/// reads `http:///x` and `http:x` as `http://x/`, which is not what was written.
fn parse_url(raw: &str) -> Result<Url, String> {
    let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
    let Some(rest) = ["http://", "https://"].iter().find_map(|p| lower.starts_with(p).then(|| &raw[p.len()..])) else {
        return Err(format!("`{}` is not an http:// or https:// URL", quote(raw)));
    };
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Err(format!("`{}` names no host; write e.g. `http://127.0.0.1:8080/healthz`", quote(raw)));
    }
    Url::parse(raw).map_err(|e| format!("`{}` is not a URL: {e}", quote(raw)))
}

impl Check for Http {
    fn run<'a>(&'a self, ctx: &'a RunCtx) -> CheckFuture<'a> {
        Box::pin(async move { self.attempt(ctx).await.unwrap_or_else(Outcome::fail) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback server answering every request `200 OK`, until the test ends.
    async fn answering() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ =
                        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
                });
            }
        });
        addr
    }

    fn checks(policy: &str) -> Vec<crate::policy::CheckSpec> {
        crate::policy::parse(policy, "p.yaml").unwrap_or_else(|e| panic!("{e}")).checks
    }

    fn ctx() -> RunCtx {
        let limit = std::time::Duration::from_secs(20);
        RunCtx { deadline: tokio::time::Instant::now() + limit, limit }
    }

    #[tokio::test]
    async fn a_fifo_as_ca_file_fails_its_own_check_and_holds_up_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("ca.pem");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let addr = answering().await;
        let specs = checks(&format!(
            "version: 1\nchecks:\n  - {{name: pinned, kind: http, url: \"https://127.0.0.1:9/\", ca_file: {}}}\n  \
             - {{name: api, kind: http, url: \"http://{addr}/\"}}\n",
            fifo.display()
        ));
        let ctx = ctx();
        let started = std::time::Instant::now();
        let (pinned, api) = tokio::join!(specs[0].check.run(&ctx), specs[1].check.run(&ctx));
        assert_eq!(api.status, super::super::Found::Pass, "{}", api.message);
        assert_eq!(pinned.status, super::super::Found::Fail);
        assert!(pinned.message.contains("is a FIFO"), "{}", pinned.message);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "neither waited on the FIFO");
    }

    #[tokio::test]
    async fn a_password_file_that_is_no_regular_file_fails_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("password");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let addr = answering().await;
        for (file, why) in [(fifo.display().to_string(), "is a FIFO"), ("/dev/zero".into(), "character device")] {
            let specs = checks(&format!(
                "version: 1\nchecks:\n  - name: api\n    kind: http\n    url: \"http://{addr}/\"\n    \
                 basic_auth: {{user: u, password_file: {file}}}\n"
            ));
            let out = tokio::time::timeout(std::time::Duration::from_secs(10), specs[0].check.run(&ctx())).await;
            let out = out.expect("the attempt ends by itself");
            assert_eq!(out.status, super::super::Found::Fail, "{file}");
            assert!(out.message.contains(why), "{file}: {}", out.message);
        }
    }

    #[test]
    fn status_ranges() {
        assert_eq!("200-299".parse::<StatusRange>(), Ok(StatusRange(200, 299)));
        assert_eq!("204".parse::<StatusRange>(), Ok(StatusRange(204, 204)));
        assert!("299-200".parse::<StatusRange>().is_err());
        assert!("2xx".parse::<StatusRange>().is_err());
        assert!("700".parse::<StatusRange>().is_err());
    }

    #[test]
    fn urls_name_their_host() {
        for ok in ["http://127.0.0.1:8080/healthz", "HTTPS://[::1]/x", "http://u:p@localhost/?a=1"] {
            assert!(parse_url(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("http:///x", "names no host"),
            ("http://u:p@/x", "names no host"),
            ("http://:80/x", "names no host"),
            ("http:x", "not an http:// or https:// URL"),
            ("ftp://h/x", "not an http:// or https:// URL"),
            ("http://u:secret@h:99999/", "not a URL"),
        ] {
            let err = parse_url(bad).unwrap_err();
            assert!(err.contains(why) && !err.contains("secret"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_shown_url_is_masked() {
        let keys: Keys = serde_yaml::from_str("url: 'http://u:pw-1@127.0.0.1:1/p?token=t-2&a=b'").unwrap();
        let http = Http::build(keys).unwrap();
        assert_eq!(http.shown, "http://u:***@127.0.0.1:1/p?token=***&a=b");
    }
}
