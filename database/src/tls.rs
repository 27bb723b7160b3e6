//! TLS to PostgreSQL and Redis (rustls on ring), configured the one way both URLs allow: a PostgreSQL URL's
//! `sslmode` and `sslrootcert` as libpq reads them, and `rediss://` with the same `sslrootcert=PATH` for Redis.
//! The URLs live in one Secret, so a private CA is a file mounted beside it and named in each URL.
//!
//! PostgreSQL modes: `disable`, `allow`, `prefer` (libpq's default) and no `sslmode` connect without TLS, as
//! before: the hot read path keeps its plain connections unless TLS is asked for. `require` encrypts without
//! checking the certificate, unless `sslrootcert` is given, when it checks the chain as `verify-ca` does (libpq's
//! rule); `verify-ca` checks the chain, `verify-full` the chain and the host name. Roots: `sslrootcert`, else
//! the system store (shared with fred, which reads it the same way).

use std::{
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
};

use rustls::{
    client::{
        danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
        WebPkiServerVerifier,
    },
    crypto::{CryptoProvider, WebPkiSupportedAlgorithms},
    pki_types::{pem::PemObject as _, CertificateDer, ServerName, UnixTime},
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::DbError;

/// Why TLS could not be set up as a URL asks.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// An `sslmode` we do not know.
    #[error(
        "sslmode={0} is not supported: use disable, prefer, require, verify-ca or verify-full"
    )]
    BadSslMode(String),
    /// The `sslrootcert` file cannot be read or is not PEM.
    #[error("cannot read CA certificates (sslrootcert) from {path}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// The `sslrootcert` file holds no certificate.
    #[error("{0} (sslrootcert) holds no CA certificate")]
    NoCertificates(String),
    /// No `sslrootcert` and nothing usable in the system store.
    #[error("no CA certificates in the system store ({0}); name a CA file with sslrootcert=PATH")]
    NoSystemRoots(String),
    /// `sslrootcert` on a Redis URL that is not `rediss://`.
    #[error("sslrootcert is given but the Redis URL is not rediss:// (TLS)")]
    CaWithoutTls,
    /// rustls refused the configuration.
    #[error("TLS configuration")]
    Rustls(#[from] rustls::Error),
    /// The certificate verifier could not be built from the roots.
    #[error("TLS certificate verifier")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// What a PostgreSQL URL asks for, ready to connect (a pool's manager or a single connection).
pub struct PgTarget {
    /// The URL without our TLS parameters, with the SSL mode tokio-postgres must enforce.
    pub config: tokio_postgres::Config,
    /// The TLS connector; unused when the mode says no TLS.
    pub tls: MakeRustlsConnect,
}

/// Parses a PostgreSQL URL (or `key=value` string) with its `sslmode` and `sslrootcert`.
///
/// # Errors
/// [`DbError::Config`]: the URL does not parse (its source is the `tokio_postgres::Error`), or TLS cannot be set
/// up as asked (a [`TlsError`]).
pub fn postgres(url: &str) -> Result<PgTarget, DbError> {
    let config_error = |error: TlsError| DbError::Config(Arc::new(error));
    let params = TlsParams::take(url, &["sslmode", "sslrootcert"]);
    let mode = PgMode::parse(params.value("sslmode")).map_err(config_error)?;
    let ca = params.value("sslrootcert").map(PathBuf::from);
    let mut config = tokio_postgres::Config::from_str(&params.rest)
        .map_err(|error| DbError::Config(Arc::new(error)))?;
    let tls = match mode {
        PgMode::Off => {
            config.ssl_mode(SslMode::Disable);
            // Never used: no roots to load.
            client_config(Arc::new(EncryptOnly::new())).map_err(config_error)?
        }
        mode => {
            config.ssl_mode(SslMode::Require);
            client_config(verifier(mode, ca.as_deref()).map_err(config_error)?)
                .map_err(config_error)?
        }
    };
    Ok(PgTarget {
        config,
        tls: MakeRustlsConnect::new(tls),
    })
}

/// Parses a Redis URL; for `rediss://`, TLS verifies the server against `sslrootcert=PATH` when given, else the
/// system store.
///
/// # Errors
/// The URL does not parse, `sslrootcert` without `rediss://`, or TLS cannot be set up.
pub fn redis(url: &str) -> Result<fred::prelude::Config, fred::error::Error> {
    let tls_error = |error: TlsError| {
        fred::error::Error::new(
            fred::error::ErrorKind::Tls,
            plumbing::chain::Chain(&error).to_string(),
        )
    };
    let params = TlsParams::take(url, &["sslrootcert"]);
    let ca = params.value("sslrootcert").map(PathBuf::from);
    let mut config = fred::prelude::Config::from_url(&params.rest)?;
    match (&config.tls, ca) {
        (None, None) => {}
        (None, Some(_)) => return Err(tls_error(TlsError::CaWithoutTls)),
        (Some(_), ca) => {
            let verifier = verifier(PgMode::VerifyFull, ca.as_deref()).map_err(tls_error)?;
            let tls = client_config(verifier).map_err(tls_error)?;
            config.tls = Some(tls.into());
        }
    }
    Ok(config)
}

/// libpq's `sslmode`, as far as we act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgMode {
    Off,
    Require,
    VerifyCa,
    VerifyFull,
}

impl PgMode {
    fn parse(value: Option<&str>) -> Result<Self, TlsError> {
        match value {
            None | Some("disable" | "allow" | "prefer") => Ok(Self::Off),
            Some("require") => Ok(Self::Require),
            Some("verify-ca") => Ok(Self::VerifyCa),
            Some("verify-full") => Ok(Self::VerifyFull),
            Some(other) => Err(TlsError::BadSslMode(other.to_owned())),
        }
    }
}

/// A URL with some query parameters taken out: tokio-postgres refuses parameters it does not know
/// (`sslrootcert`) and modes it does not have (`verify-full`), and fred has no use for them.
struct TlsParams {
    rest: String,
    taken: Vec<(String, String)>,
}

impl TlsParams {
    fn take(url: &str, keys: &[&str]) -> Self {
        let ours = |pair: &str| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            keys.contains(&key).then(|| {
                let value = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                (key.to_owned(), value.into_owned())
            })
        };
        let (rest, taken) = if url.contains("://") {
            match url.split_once('?') {
                Some((base, query)) => {
                    let (taken, kept): (Vec<_>, Vec<_>) = query
                        .split('&')
                        .map(|pair| (pair, ours(pair)))
                        .partition(|(_, ours)| ours.is_some());
                    let kept: Vec<&str> = kept.into_iter().map(|(pair, _)| pair).collect();
                    let rest = if kept.is_empty() {
                        base.to_owned()
                    } else {
                        format!("{base}?{}", kept.join("&"))
                    };
                    (
                        rest,
                        taken.into_iter().filter_map(|(_, ours)| ours).collect(),
                    )
                }
                None => (url.to_owned(), Vec::new()),
            }
        } else {
            // `key=value` form: rebuilt only when it holds one of ours, so quoted values elsewhere survive.
            let taken: Vec<_> = url.split_whitespace().filter_map(ours).collect();
            let rest = if taken.is_empty() {
                url.to_owned()
            } else {
                url.split_whitespace()
                    .filter(|pair| ours(pair).is_none())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            (rest, taken)
        };
        Self { rest, taken }
    }

    /// The last value given for `key` (libpq lets a later one win).
    fn value(&self, key: &str) -> Option<&str> {
        self.taken
            .iter()
            .rev()
            .find(|(taken, _)| taken == key)
            .map(|(_, value)| value.as_str())
    }
}

/// ring, named rather than the process default, so a second provider elsewhere in the tree cannot make the
/// choice ambiguous.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(verifier: Arc<dyn ServerCertVerifier>) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

fn verifier(mode: PgMode, ca: Option<&Path>) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    if mode == PgMode::Require && ca.is_none() {
        return Ok(Arc::new(EncryptOnly::new()));
    }
    let webpki =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(ca)?), provider()).build()?;
    Ok(match mode {
        PgMode::VerifyFull => webpki,
        _ => Arc::new(AnyName(webpki)),
    })
}

fn roots(ca: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        Some(path) => {
            let shown = path.display().to_string();
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
                .map_err(|source| TlsError::CaFile {
                    path: shown.clone(),
                    source,
                })?;
            let (added, _) = roots.add_parsable_certificates(certificates);
            if added == 0 {
                return Err(TlsError::NoCertificates(shown));
            }
        }
        None => {
            let system = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(system.certs);
            if roots.is_empty() {
                let errors: Vec<String> = system.errors.iter().map(ToString::to_string).collect();
                return Err(TlsError::NoSystemRoots(errors.join("; ")));
            }
        }
    }
    Ok(roots)
}

/// `sslmode=require` without a CA: encrypted, the certificate unchecked (libpq's meaning), but the handshake
/// signatures still checked so the session key is the server's.
#[derive(Debug)]
struct EncryptOnly(WebPkiSupportedAlgorithms);

impl EncryptOnly {
    fn new() -> Self {
        Self(provider().signature_verification_algorithms)
    }
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the certificate is not compared with the
/// host (libpq's meaning: for servers reached by an address their certificate does not name).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_parameters_are_taken_out_of_a_url_and_the_rest_is_kept() {
        let params = TlsParams::take(
            "postgres://u:p@db:5432/x?application_name=a&sslmode=verify-full&sslrootcert=%2Fca%20dir%2Fca.pem",
            &["sslmode", "sslrootcert"],
        );
        assert_eq!(params.rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(params.value("sslmode"), Some("verify-full"));
        assert_eq!(params.value("sslrootcert"), Some("/ca dir/ca.pem"));
    }

    #[test]
    fn our_parameters_are_taken_out_of_a_key_value_string() {
        let params = TlsParams::take(
            "host=db user=u sslmode=require",
            &["sslmode", "sslrootcert"],
        );
        assert_eq!(params.rest, "host=db user=u");
        assert_eq!(params.value("sslmode"), Some("require"));
        assert_eq!(params.value("sslrootcert"), None);
    }

    #[test]
    fn a_url_without_our_parameters_is_left_alone() {
        let url = "postgres://u:p@db/x?options=-c%20a%3Db";
        assert_eq!(TlsParams::take(url, &["sslmode"]).rest, url);
    }

    #[test]
    fn modes_map_as_libpq_names_them() {
        assert_eq!(PgMode::parse(None).ok(), Some(PgMode::Off));
        assert_eq!(PgMode::parse(Some("prefer")).ok(), Some(PgMode::Off));
        assert_eq!(PgMode::parse(Some("require")).ok(), Some(PgMode::Require));
        assert_eq!(
            PgMode::parse(Some("verify-full")).ok(),
            Some(PgMode::VerifyFull)
        );
        let error = PgMode::parse(Some("always")).expect_err("unknown");
        assert!(error.to_string().contains("sslmode=always"), "{error}");
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let error = postgres("postgres://u@db/x?sslmode=verify-full&sslrootcert=/no/such/ca.pem")
            .err()
            .expect("no such file");
        let logged = plumbing::chain::Chain(&error).to_string();
        assert!(logged.contains("/no/such/ca.pem"), "{logged}");
    }

    #[test]
    fn a_ca_on_a_plain_redis_url_is_refused() {
        let error = redis("redis://127.0.0.1:6379?sslrootcert=/ca.pem").expect_err("not TLS");
        assert!(error.to_string().contains("rediss://"), "{error}");
    }
}
