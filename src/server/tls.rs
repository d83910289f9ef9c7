//! TLS on the endpoint, as `tls_server_config` of the web config sets it: rustls with the
//! same ring provider reqwest already brings, the client certificate asked for and checked
//! as `client_auth_type` says. The handshake itself runs in the accept loop (`conn`),
//! inside a connection slot and under the request-head deadline. A certificate renewed on
//! disk is picked up within [`RENEWAL_CHECK`], without a restart, as exporter-toolkit does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use super::web_config::{ClientAuth, Tls, files};

/// How often the certificate and key files are looked at for a renewal.
pub const RENEWAL_CHECK: Duration = Duration::from_secs(5);

/// The acceptor for `tls`: its versions, suites, groups, certificate and client verification.
/// Starts the watch for a renewed certificate, which ends when the acceptor is dropped.
pub fn acceptor(tls: &Tls) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(CryptoProvider {
        cipher_suites: tls.cipher_suites.clone(),
        kx_groups: tls.kx_groups.clone(),
        ..ring::default_provider()
    });
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&tls.versions)
        .context("the TLS versions, cipher suites and curves have nothing in common")?;
    let verifier: Arc<dyn ClientCertVerifier> = match (tls.client_auth, &tls.client_roots) {
        (ClientAuth::NoClientCert, _) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::RequestClientCert, _) => Arc::new(AnyCert { mandatory: false, provider: Arc::clone(&provider) }),
        (ClientAuth::RequireAnyClientCert, _) => Arc::new(AnyCert { mandatory: true, provider: Arc::clone(&provider) }),
        (ClientAuth::VerifyClientCertIfGiven, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider))
                .allow_unauthenticated()
                .build()?
        }
        (ClientAuth::RequireAndVerifyClientCert, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), Arc::clone(&provider)).build()?
        }
        // Validation never lets a verifying type through without its CA.
        (other, None) => anyhow::bail!("{other:?} needs client_ca_file"),
    };
    let verifier: Arc<dyn ClientCertVerifier> = if tls.allowed_sans.is_empty() {
        verifier
    } else {
        Arc::new(AllowedSans { inner: verifier, allowed: tls.allowed_sans.clone() })
    };
    let renewing = Arc::new(Renewing { current: RwLock::new(Arc::clone(&tls.key)) });
    tokio::spawn(watch_renewals(
        Arc::downgrade(&renewing),
        [tls.cert_file.clone(), tls.key_file.clone()],
        Arc::clone(&provider),
    ));
    let mut config = builder.with_client_cert_verifier(verifier).with_cert_resolver(renewing);
    config.ignore_client_order = tls.prefer_server_order;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate and key in use, replaced when the files change.
#[derive(Debug)]
struct Renewing {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Renewing {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| Arc::clone(&key))
    }
}

/// Looks at `[cert, key]` every [`RENEWAL_CHECK`] and loads them when either changed. A pair
/// that cannot be used (a renewal half written, a key of another certificate) is logged and
/// the one in use is kept; the next change is tried again.
async fn watch_renewals(into: Weak<Renewing>, [cert, key]: [PathBuf; 2], provider: Arc<CryptoProvider>) {
    let mut seen = [stamp(&cert), stamp(&key)];
    loop {
        tokio::time::sleep(RENEWAL_CHECK).await;
        let Some(renewing) = into.upgrade() else { return };
        let now = [stamp(&cert), stamp(&key)];
        if now == seen {
            continue;
        }
        seen = now;
        let (c, k, p) = (cert.clone(), key.clone(), Arc::clone(&provider));
        match tokio::task::spawn_blocking(move || files::certified_key(&c, &k, &p)).await {
            Ok(Ok(new)) => {
                if let Ok(mut current) = renewing.current.write() {
                    *current = new;
                }
                tracing::info!(cert = %cert.display(), "the endpoint's TLS certificate changed on disk; new handshakes use it");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot use the changed TLS certificate ({e}); keeping the one in use")
            }
            Err(e) => tracing::warn!(error = %e, "the TLS certificate reload ended abnormally"),
        }
    }
}

/// What tells a replaced file: its modification time, size and inode.
fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// Go's `RequestClientCert` and `RequireAnyClientCert`: a certificate of any issuer, whose
/// key the client still has to prove it holds by signing the handshake.
#[derive(Debug)]
struct AnyCert {
    mandatory: bool,
    provider: Arc<CryptoProvider>,
}

impl AnyCert {
    fn algorithms(&self) -> &WebPkiSupportedAlgorithms {
        &self.provider.signature_verification_algorithms
    }
}

impl ClientCertVerifier for AnyCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

/// `client_allowed_sans`: a client certificate that `inner` accepts must also carry one of
/// `allowed` as a DNS name, IP address or URI, exactly; and a certificate is required.
#[derive(Debug)]
struct AllowedSans {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl AllowedSans {
    /// Whether `cert` names one of the allowed SANs.
    fn names_one(&self, cert: &CertificateDer<'_>) -> bool {
        let Ok(cert) = webpki::EndEntityCert::try_from(cert) else { return false };
        let mut names = cert.valid_dns_names().chain(cert.valid_uri_names());
        names.any(|name| self.allowed.iter().any(|a| a == name))
            || self
                .allowed
                .iter()
                .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
                .any(|ip| cert.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into())).is_ok())
    }
}

impl ClientCertVerifier for AllowedSans {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        if self.names_one(end_entity) {
            return Ok(verified);
        }
        tracing::debug!("a client certificate names none of client_allowed_sans");
        Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
