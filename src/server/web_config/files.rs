//! The files a web config names: the server's certificate chain and key, which must
//! match and be in date, and the CA that verifies client certificates. Each is a bounded
//! regular-file read, and no error ever quotes their contents.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{Error, InconsistentKeys, RootCertStore};

use crate::util::read::read_regular;
use crate::util::time::readable_time;

/// The largest certificate, key or CA bundle read, in bytes.
pub const MAX_PEM_BYTES: u64 = 1 << 20;

/// The certificate chain at `cert` with the key at `key`, which must sign for its first
/// certificate; an expired first certificate is refused.
pub fn certified_key(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, String> {
    let chain = certificates(cert)?;
    in_date(&chain[0], UnixTime::now(), provider).map_err(|e| format!("{}: {e}", cert.display()))?;
    let pem = read_regular(key, MAX_PEM_BYTES).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    // The parser's own errors may quote a line of the file: they are not passed on.
    let der = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|_| format!("{} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)", key.display()))?;
    let signer = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| format!("{} holds a private key that cannot be used: {e}", key.display()))?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(format!("the key {} does not go with the certificate {}", key.display(), cert.display()))
        }
        Err(e) => Err(format!("{} holds a certificate that cannot be used: {e}", cert.display())),
    }
}

/// Refuses a server certificate past its notAfter at `now`. One whose notBefore is still to
/// come is only logged: a device without a battery-backed clock starts in the past until
/// its time is synchronised, and the endpoint must not stay down for that.
fn in_date(cert: &CertificateDer<'_>, now: UnixTime, provider: &CryptoProvider) -> Result<(), String> {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else { return Ok(()) };
    let Ok(anchor) = webpki::anchor_from_trusted_cert(cert) else { return Ok(()) };
    let anchors = [anchor];
    // Only the dates matter here; webpki checks them before anything about the issuer.
    let checked = end_entity.verify_for_usage(
        provider.signature_verification_algorithms.all,
        &anchors,
        &[],
        now,
        webpki::KeyUsage::server_auth(),
        None,
        None,
    );
    match checked {
        Err(webpki::Error::CertExpired { not_after, .. }) => {
            Err(format!("the certificate expired on {} (renew it; clients refuse it)", spelled_date(not_after)))
        }
        Err(webpki::Error::CertNotValidYet { not_before, .. }) => {
            tracing::warn!(
                "the endpoint's certificate is valid only from {}; is the clock set?",
                spelled_date(not_before)
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// `time` for people, in UTC.
fn spelled_date(time: UnixTime) -> String {
    let since_epoch = std::time::Duration::from_secs(time.as_secs());
    std::time::UNIX_EPOCH.checked_add(since_epoch).map_or_else(|| "far in the future".into(), readable_time)
}

/// The CA certificates at `path`, for verifying client certificates.
pub fn client_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for der in certificates(path)? {
        roots.add(der).map_err(|e| format!("{} holds a CA certificate that cannot be used: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The PEM certificates at `path`, at least one.
fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read_regular(path, MAX_PEM_BYTES).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|_| format!("{} is not a PEM certificate file", path.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(chain)
}
