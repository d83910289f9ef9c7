//! TLS on the endpoint, as `tls_server_config` of the web config sets it: rustls with the
//! same ring provider reqwest already brings, the client certificate asked for and checked
//! as `client_auth_type` says. The handshake itself runs in the accept loop (`conn`),
//! inside a connection slot and under the request-head deadline.

use std::sync::Arc;

use anyhow::Context as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, ring};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::SingleCertAndKey;
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use tokio_rustls::TlsAcceptor;

use super::web_config::{ClientAuth, Tls};

/// The acceptor for `tls`: its versions, suites, groups, certificate and client verification.
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
        (ClientAuth::RequestClientCert, _) => Arc::new(AnyCert { mandatory: false, provider }),
        (ClientAuth::RequireAnyClientCert, _) => Arc::new(AnyCert { mandatory: true, provider }),
        (ClientAuth::VerifyClientCertIfGiven, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider).allow_unauthenticated().build()?
        }
        (ClientAuth::RequireAndVerifyClientCert, Some(roots)) => {
            WebPkiClientVerifier::builder_with_provider(Arc::clone(roots), provider).build()?
        }
        // Validation never lets a verifying type through without its CA.
        (other, None) => anyhow::bail!("{other:?} needs client_ca_file"),
    };
    let mut config = builder
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(Arc::clone(&tls.key))));
    config.ignore_client_order = tls.prefer_server_order;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
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
