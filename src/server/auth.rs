//! Basic auth on every route, for the web config's `basic_auth_users`. bcrypt is slow on
//! purpose, so a check that passed is remembered (by a SHA-256 of the name, password and
//! hash, never the password itself) and a scrape every second costs one hash, not one
//! bcrypt; checks that are not remembered run one at a time, off the async threads, so a
//! flood of wrong passwords takes at most one core from the gate.

use std::collections::HashSet;
use std::sync::Mutex;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::digest::{SHA256, digest};
use tokio::sync::Semaphore;

use super::problem::problem;
use super::web_config::Users;

/// Checks remembered at most; past it the memory starts again, empty.
const MAX_REMEMBERED: usize = 1024;

/// The users and the checks that passed.
pub struct Auth {
    users: Users,
    passed: Mutex<HashSet<[u8; 32]>>,
    /// One bcrypt at a time.
    checking: Semaphore,
}

impl Auth {
    /// Checks requests against `users`; `None` when there are none (no authentication).
    pub fn new(users: Users) -> Option<Auth> {
        (!users.is_empty()).then(|| Auth { users, passed: Mutex::default(), checking: Semaphore::new(1) })
    }

    /// The route's answer for a known user with the right password, else 401.
    pub async fn check(&self, request: Request, next: Next) -> Response {
        if self.allows(request.headers().get(header::AUTHORIZATION)).await {
            return next.run(request).await;
        }
        // Nothing of the route, the user or the reason: only what to send.
        let challenge = HeaderValue::from_static("Basic realm=\"bootgate\", charset=\"UTF-8\"");
        let detail = "send the name and password of one of the web config's basic_auth_users (Basic auth)";
        let mut res = problem(StatusCode::UNAUTHORIZED, detail, Default::default());
        res.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        res
    }

    /// Whether `authorization` names a user with the right password.
    async fn allows(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((name, password)) = authorization.and_then(credentials) else { return false };
        let hash = self.users.hash(&name);
        let key = remembered_key(&name, &password, hash.unwrap_or_default());
        if hash.is_some() && self.passed.lock().is_ok_and(|p| p.contains(&key)) {
            return true;
        }
        // An unknown name costs a bcrypt too, against a real hash, so timing does not tell names apart.
        let Some(target) = hash.or_else(|| self.users.any_hash()).map(str::to_string) else { return false };
        let Ok(_turn) = self.checking.acquire().await else { return false };
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &target).unwrap_or(false))
            .await
            .unwrap_or(false);
        let ok = verified && hash.is_some();
        if ok && let Ok(mut passed) = self.passed.lock() {
            if passed.len() >= MAX_REMEMBERED {
                passed.clear();
            }
            passed.insert(key);
        }
        ok
    }
}

/// The name and password of a `Basic` authorization header.
fn credentials(value: &HeaderValue) -> Option<(String, Vec<u8>)> {
    let (scheme, encoded) = value.to_str().ok()?.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let name = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((name, decoded[colon + 1..].to_vec()))
}

/// What a passed check is remembered by: no password can be read back from it.
fn remembered_key(name: &str, password: &[u8], hash: &str) -> [u8; 32] {
    let mut input = Vec::with_capacity(name.len() + password.len() + hash.len() + 2);
    for part in [name.as_bytes(), &[0], password, &[0], hash.as_bytes()] {
        input.extend_from_slice(part);
    }
    let mut key = [0; 32];
    key.copy_from_slice(digest(&SHA256, &input).as_ref());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_read() {
        let header = |s: &str| HeaderValue::from_str(s).unwrap();
        let encoded = STANDARD.encode("alice:pa:ss");
        assert_eq!(credentials(&header(&format!("Basic {encoded}"))), Some(("alice".into(), b"pa:ss".to_vec())));
        assert_eq!(credentials(&header(&format!("basic  {encoded}"))).map(|c| c.0), Some("alice".into()));
        assert_eq!(credentials(&header(&format!("Bearer {encoded}"))), None);
        assert_eq!(credentials(&header("Basic !!!")), None);
        assert_eq!(credentials(&header(&format!("Basic {}", STANDARD.encode("nocolon")))), None);
    }

    #[tokio::test]
    async fn right_passwords_pass_and_are_remembered() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let text = format!("basic_auth_users:\n  alice: '{hash}'\n");
        let config = super::super::web_config::parse(&text, "web.yml", std::path::Path::new(".")).unwrap();
        let auth = Auth::new(config.users).unwrap();
        let basic = |user: &str, pass: &str| {
            HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(format!("{user}:{pass}")))).unwrap()
        };
        assert!(!auth.allows(None).await);
        assert!(!auth.allows(Some(&basic("alice", "wrong"))).await);
        assert!(!auth.allows(Some(&basic("bob", "secret"))).await);
        assert!(auth.passed.lock().unwrap().is_empty(), "a failed check is never remembered");
        assert!(auth.allows(Some(&basic("alice", "secret"))).await);
        assert_eq!(auth.passed.lock().unwrap().len(), 1);
        assert!(auth.allows(Some(&basic("alice", "secret"))).await);
        assert!(!auth.allows(Some(&basic("alice", "secret2"))).await);
    }
}
