//! Finding and reading the policy: `--policy`, `$BOOTGATE_POLICY`,
//! `/etc/bootgate/policy.yaml`, `/usr/share/bootgate/policy.yaml`, then the embedded default.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use super::{MAX_POLICY_BYTES, Policy, PolicyError, Problem, validate};

/// The embedded copy of `policy/default.yaml`.
pub const DEFAULT_POLICY: &str = include_str!("../../policy/default.yaml");

const SYSTEM_PATHS: [&str; 2] = ["/etc/bootgate/policy.yaml", "/usr/share/bootgate/policy.yaml"];

/// A policy together with where it came from.
pub struct Loaded {
    pub policy: Policy,
    pub source: String,
}

/// Loads the policy by the documented lookup order.
pub fn load(explicit: Option<&Path>) -> Result<Loaded, PolicyError> {
    let env = std::env::var_os("BOOTGATE_POLICY").filter(|v| !v.is_empty()).map(PathBuf::from);
    let system: Vec<PathBuf> = SYSTEM_PATHS.iter().map(PathBuf::from).collect();
    load_at(explicit, env.as_deref(), &system)
}

/// [`load`] with the environment and system paths injected.
pub fn load_at(explicit: Option<&Path>, env: Option<&Path>, system: &[PathBuf]) -> Result<Loaded, PolicyError> {
    // A path the operator named must exist: a typo must not fall back to the default.
    if let Some(path) = explicit.or(env) {
        return read(path);
    }
    for path in system {
        match std::fs::metadata(path) {
            Ok(_) => return read(path),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            // Present but unreadable (permissions, I/O): never skip a policy that exists.
            Err(e) => {
                return Err(PolicyError::Read { path: path.display().to_string(), source: e });
            }
        }
    }
    let policy = parse(DEFAULT_POLICY, "<embedded policy/default.yaml>")?;
    Ok(Loaded { policy, source: "embedded default".into() })
}

fn read(path: &Path) -> Result<Loaded, PolicyError> {
    let label = path.display().to_string();
    let bytes = crate::util::read::read_regular(path, MAX_POLICY_BYTES)
        .map_err(|source| PolicyError::Read { path: label.clone(), source })?;
    let text = String::from_utf8(bytes).map_err(|e| not_utf8(e.as_bytes(), e.utf8_error().valid_up_to(), &label))?;
    let policy = parse(&text, &label)?;
    Ok(Loaded { policy, source: label })
}

/// Locates the first byte that is not UTF-8: its offset, and its line and column
/// (counted in characters) in the valid text before it.
fn not_utf8(bytes: &[u8], offset: usize, file: &str) -> PolicyError {
    let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
    let message = format!("byte {offset} (0x{:02x}) is not UTF-8; a policy must be UTF-8 text", bytes[offset]);
    let problem = Problem { file: file.into(), line, column, key: String::new(), message };
    PolicyError::Invalid { file: file.into(), problems: vec![problem] }
}

/// Parses and validates policy text; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<Policy, PolicyError> {
    validate::validate(text, file).map_err(|problems| PolicyError::Invalid { file: file.to_string(), problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        parse(DEFAULT_POLICY, "default.yaml").unwrap();
    }

    #[test]
    fn lookup_order_and_fail_closed() {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc.yaml");
        let usr = dir.path().join("usr.yaml");
        let system = [etc.clone(), usr.clone()];

        // Nothing present: the embedded default.
        assert_eq!(load_at(None, None, &system).unwrap().source, "embedded default");

        // /usr/share is used when /etc is absent; /etc wins when present.
        std::fs::write(&usr, DEFAULT_POLICY).unwrap();
        assert_eq!(load_at(None, None, &system).unwrap().source, usr.display().to_string());
        std::fs::write(&etc, "version: 1\nchecks: [{name: a, kind: tcp, targets: ['127.0.0.1:1']}]\n").unwrap();
        assert_eq!(load_at(None, None, &system).unwrap().source, etc.display().to_string());

        // An invalid /etc policy is never skipped in favour of /usr/share.
        std::fs::write(&etc, "version: 1\nchecks: []\nbogus: 1\n").unwrap();
        assert!(matches!(load_at(None, None, &system), Err(PolicyError::Invalid { .. })));

        // Not UTF-8: the first bad byte, located.
        std::fs::write(&etc, b"version: 1\nchecks: [\xff]\n").unwrap();
        let Err(PolicyError::Invalid { problems, .. }) = load_at(None, None, &system) else { panic!("accepted") };
        assert_eq!((problems[0].line, problems[0].column), (2, 10));
        assert!(problems[0].message.starts_with("byte 20 (0xff) is not UTF-8"), "{}", problems[0].message);

        // A named path that does not exist is an error, not a fallback.
        let missing = dir.path().join("missing.yaml");
        assert!(matches!(load_at(Some(&missing), None, &system), Err(PolicyError::Read { .. })));
        assert!(matches!(load_at(None, Some(&missing), &system), Err(PolicyError::Read { .. })));
    }
}
