use std::path::Path;
use std::process::Command;

use super::super::{WebConfig, WebConfigError, parse};
use super::*;

/// A CA, a server certificate and key it signed, and a second, unrelated key, made by `openssl`.
fn pki(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "ca.key"]);
    run(&["req", "-x509", "-key", "ca.key", "-subj", "/CN=test ca", "-days", "2", "-out", "ca.crt"]);
    run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "server.key"]);
    run(&["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "other.key"]);
    run(&["req", "-new", "-key", "server.key", "-subj", "/CN=localhost", "-out", "server.csr"]);
    std::fs::write(dir.join("server.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
        .unwrap();
    let ext = ["-extfile", "server.ext"];
    run(&[
        &["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-days", "2", "-out", "server.crt"]
            [..],
        &ext,
    ]
    .concat());
}

fn ok(text: &str, dir: &Path) -> WebConfig {
    parse(text, "web.yml", dir).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// Each problem as `line:column: key: message`.
fn problems(text: &str, dir: &Path) -> Vec<String> {
    match parse(text, "web.yml", dir) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(WebConfigError::Invalid { problems, .. }) => {
            problems.iter().map(|p| format!("{}:{}: {}: {}", p.line, p.column, p.key, p.message)).collect()
        }
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn an_empty_file_or_section_is_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    for text in ["", "tls_server_config: {}\n", "tls_server_config:\n"] {
        let config = ok(text, dir.path());
        assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty(), "{text:?}");
    }
}

#[test]
fn tls_with_relative_paths_and_defaults() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let config = ok("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", dir.path());
    let tls = config.tls.expect("tls");
    assert_eq!(tls.cert_file, dir.path().join("server.crt"));
    assert_eq!(tls.client_auth, ClientAuth::NoClientCert);
    assert!(tls.client_roots.is_none());
    assert_eq!(tls.versions, [&rustls::version::TLS12, &rustls::version::TLS13]);
    assert!(tls.prefer_server_order);
}

#[test]
fn unknown_keys_are_located() {
    let dir = tempfile::tempdir().unwrap();
    let text = "tls_server_config:\n  cert_file: a\n  kee_file: b\n";
    let found = problems(text, dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("3:3: tls_server_config.kee_file: unknown field `kee_file`"), "{found:?}");
    let found = problems("basic_auth_user:\n  a: b\n", dir.path());
    assert!(found[0].starts_with("1:1: basic_auth_user: unknown field"), "{found:?}");
    let found = problems("http_server_config:\n  http2: false\n  header: {}\n", dir.path());
    assert!(found[0].starts_with("3:3: http_server_config.header: unknown field"), "{found:?}");
}

#[test]
fn an_expired_certificate_is_refused_with_its_date() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    // `openssl ca` alone takes explicit dates: server.key signed by the CA for a day in 2020.
    let conf = "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n\
                default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n";
    std::fs::write(dir.path().join("ca.cnf"), conf).unwrap();
    std::fs::write(dir.path().join("index.txt"), "").unwrap();
    std::fs::write(dir.path().join("serial"), "01\n").unwrap();
    let args = ["ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "server.csr"];
    let dates =
        ["-startdate", "20200101000000Z", "-enddate", "20200102000000Z", "-extfile", "server.ext", "-out", "old.crt"];
    let out = Command::new("openssl").args(args).args(dates).current_dir(dir.path()).output().expect("openssl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found = problems("tls_server_config:\n  cert_file: old.crt\n  key_file: server.key\n", dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("2:14: tls_server_config.cert_file: "), "{found:?}");
    assert!(found[0].contains("old.crt: the certificate expired on 2020-01-02 00:00:00 UTC"), "{found:?}");
    // The same key with the certificate in date passes.
    ok("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n", dir.path());
}

#[test]
fn client_allowed_sans_need_a_certificate_and_no_email() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let verify = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";
    let config = ok(&format!("{tls}{verify}  client_allowed_sans: [a.example, '10.0.0.1']\n"), dir.path());
    assert_eq!(config.tls.unwrap().allowed_sans, ["a.example", "10.0.0.1"]);
    let found = problems(&format!("{tls}  client_allowed_sans: [a.example]\n"), dir.path());
    assert_eq!(
        found,
        [
            "4:24: tls_server_config.client_allowed_sans: needs a client_auth_type that asks for a certificate (RequireAndVerifyClientCert)"
        ]
    );
    let found = problems(&format!("{tls}{verify}  client_allowed_sans: []\n"), dir.path());
    assert!(found[0].ends_with("an empty list lets no client in; name the SANs, or remove the key"), "{found:?}");
    let found = problems(&format!("{tls}{verify}  client_allowed_sans: [ops@example.com]\n"), dir.path());
    assert!(found[0].contains("e-mail SANs cannot be matched"), "{found:?}");
}

#[test]
fn a_key_of_another_certificate_is_refused_at_cert_file() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let found = problems("tls_server_config:\n  cert_file: server.crt\n  key_file: other.key\n", dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("2:14: tls_server_config.cert_file: the key "), "{found:?}");
    assert!(found[0].contains("does not go with the certificate"), "{found:?}");
    let found = problems("tls_server_config:\n  cert_file: server.crt\n  key_file: missing.key\n", dir.path());
    assert!(found[0].contains("cannot read") && found[0].contains("missing.key"), "{found:?}");
    // A key where the certificate belongs: no PEM certificate, and nothing of the key is quoted.
    let found = problems("tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n", dir.path());
    assert!(found[0].ends_with("server.key holds no PEM certificate"), "{found:?}");
    let key = std::fs::read_to_string(dir.path().join("server.key")).unwrap();
    let body = key.lines().nth(1).unwrap();
    assert!(!found.concat().contains(body));
}

#[test]
fn client_auth_and_its_ca_go_together() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let verify = format!("{base}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
    let tls = ok(&verify, dir.path()).tls.unwrap();
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(tls.client_roots.as_ref().map(|r| r.len()), Some(1));

    let found = problems(&format!("{base}  client_auth_type: VerifyClientCertIfGiven\n"), dir.path());
    assert!(
        found[0].starts_with("4:21: tls_server_config.client_auth_type: VerifyClientCertIfGiven needs"),
        "{found:?}"
    );
    let found =
        problems(&format!("{base}  client_auth_type: RequireAnyClientCert\n  client_ca_file: ca.crt\n"), dir.path());
    assert!(found[0].starts_with("5:19: tls_server_config.client_ca_file: `client_ca_file` is only used"), "{found:?}");
    let found = problems(&format!("{base}  client_auth_type: RequireClientCert\n"), dir.path());
    assert!(found[0].starts_with("4:21: tls_server_config.client_auth_type: unknown variant"), "{found:?}");
    let found = problems(
        &format!("{base}  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: server.key\n"),
        dir.path(),
    );
    assert!(found[0].ends_with("server.key holds no PEM certificate"), "{found:?}");
    let found = problems("tls_server_config:\n  key_file: server.key\n", dir.path());
    assert_eq!(found, ["2:3: tls_server_config: missing field `cert_file`"]);
}

#[test]
fn versions_suites_and_curves() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let tls = ok(&format!("{base}  min_version: TLS13\n"), dir.path()).tls.unwrap();
    assert_eq!(tls.versions, [&rustls::version::TLS13]);
    let tls = ok(&format!("{base}  min_version: TLS10\n  max_version: TLS12\n"), dir.path()).tls.unwrap();
    assert_eq!(tls.versions, [&rustls::version::TLS12]);
    let found = problems(&format!("{base}  min_version: TLS13\n  max_version: TLS12\n"), dir.path());
    assert!(found[0].contains("min_version: TLS13 is above max_version TLS12"), "{found:?}");
    let found = problems(&format!("{base}  max_version: TLS11\n"), dir.path());
    assert!(found[0].contains("TLS 1.2 and 1.3 only"), "{found:?}");

    let suites = format!(
        "{base}  cipher_suites: [TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]\n"
    );
    let tls = ok(&suites, dir.path()).tls.unwrap();
    let names: Vec<String> = tls.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect();
    assert_eq!(
        &names[names.len() - 2..],
        ["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
    );
    assert!(names.iter().any(|n| n.starts_with("TLS13_")), "TLS 1.3 keeps its suites: {names:?}");
    let found = problems(&format!("{base}  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"), dir.path());
    assert!(
        found[0].starts_with("4:19: tls_server_config.cipher_suites[0]: `TLS_RSA_WITH_RC4_128_SHA` is not"),
        "{found:?}"
    );

    let tls = ok(&format!("{base}  curve_preferences: [CurveP384, X25519]\n"), dir.path()).tls.unwrap();
    assert_eq!(
        tls.kx_groups.iter().map(|g| g.name()).collect::<Vec<_>>(),
        [rustls::NamedGroup::secp384r1, rustls::NamedGroup::X25519]
    );
    let found = problems(&format!("{base}  curve_preferences: [CurveP521]\n"), dir.path());
    assert!(found[0].contains("CurveP521 is not offered"), "{found:?}");
}

#[test]
fn users_need_bcrypt_hashes_that_are_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("secret", 4).unwrap();
    let config = ok(&format!("basic_auth_users:\n  alice: '{hash}'\n"), dir.path());
    assert_eq!(config.users.hash("alice"), Some(hash.as_str()));
    assert!(!format!("{config:?}").contains(&hash), "{config:?}");
    let found = problems("basic_auth_users:\n  alice: plaintextpassword\n", dir.path());
    assert!(found[0].starts_with("2:10: basic_auth_users.alice: not a bcrypt hash"), "{found:?}");
    assert!(!found[0].contains("plaintextpassword"));
    let found = problems(&format!("basic_auth_users:\n  'a:b': '{hash}'\n"), dir.path());
    assert!(found[0].contains("without `:`"), "{found:?}");
}

#[test]
fn only_exporter_toolkits_headers() {
    let dir = tempfile::tempdir().unwrap();
    let config = ok("http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n", dir.path());
    assert_eq!(config.headers.len(), 1);
    assert_eq!(config.headers[0].0, "x-frame-options");
    let found = problems("http_server_config:\n  headers:\n    Set-Cookie: a\n", dir.path());
    assert!(
        found[0].starts_with("3:5: http_server_config.headers.Set-Cookie: `Set-Cookie` cannot be set"),
        "{found:?}"
    );
}
