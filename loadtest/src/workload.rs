//! Which request each connection sends next: redirects for codes drawn with Zipf skew (or each code once, in
//! order, for cache-miss runs), creates of unique long URLs for the write path, and edits (`PATCH` of a new long
//! URL) of existing links. Requests are prepared as bytes up front where possible, so the hot loop only picks one.

use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

use rand::{rngs::SmallRng, SeedableRng};
use secrecy::{ExposeSecret as _, SecretString};

use crate::{client, engine::Requests, zipf::Zipf};

/// Where a target URL points.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host[:port]` for the Host header.
    pub host: String,
    /// Path prefix without a trailing `/`.
    pub base_path: String,
}

impl Target {
    /// Splits `url`.
    ///
    /// # Errors
    /// When it is not an http URL with a host.
    pub fn parse(url: &url::Url) -> anyhow::Result<Self> {
        let host = url
            .host_str()
            .ok_or_else(|| anyhow::anyhow!("{url} has no host"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            host,
            base_path: url.path().trim_end_matches('/').to_owned(),
        })
    }
}

/// How codes are drawn.
#[derive(Debug, Clone)]
pub enum Draw {
    /// With Zipf skew (exponent 0 is uniform).
    Zipf(Arc<Zipf>),
    /// Every code once, in file order, shared by all connections (wraps around at the end).
    Sequential(Arc<AtomicUsize>),
}

impl Draw {
    /// The index of the next code of `count` (at least 1).
    fn pick(&self, rng: &mut SmallRng, count: usize) -> usize {
        let index = match self {
            Self::Zipf(zipf) => zipf.sample(rng),
            Self::Sequential(next) => next.fetch_add(1, Ordering::Relaxed) % count,
        };
        index.min(count - 1)
    }
}

/// Redirect requests for one connection.
pub struct Redirects {
    requests: Arc<Vec<Vec<u8>>>,
    draw: Draw,
    rng: SmallRng,
}

impl Redirects {
    /// Prepares `GET /{code}` for every code, with `headers` (whole lines, see [`client::header_line`]).
    pub fn prepare(target: &Target, codes: &[String], headers: &[String]) -> Arc<Vec<Vec<u8>>> {
        Arc::new(
            codes
                .iter()
                .map(|code| {
                    client::get(
                        &target.host,
                        &format!("{}/{code}", target.base_path),
                        headers,
                    )
                })
                .collect(),
        )
    }

    /// The requests of connection `k`.
    pub fn new(requests: Arc<Vec<Vec<u8>>>, draw: Draw, k: usize) -> Self {
        Self {
            requests,
            draw,
            rng: SmallRng::seed_from_u64(0x5eed ^ k as u64),
        }
    }
}

impl Requests for Redirects {
    fn next(&mut self) -> &[u8] {
        &self.requests[self.draw.pick(&mut self.rng, self.requests.len())]
    }

    fn expected(&self, status: u16) -> bool {
        matches!(status, 301 | 302 | 307 | 308)
    }
}

/// Create requests for one connection: each a new long URL, so none is deduplicated.
pub struct Creates {
    target: Target,
    api_key: SecretString,
    prefix: String,
    sent: u64,
    request: Vec<u8>,
}

impl Creates {
    /// Creates for connection `k` of run `run_id`.
    pub fn new(target: Target, api_key: SecretString, run_id: &str, k: usize) -> Self {
        Self {
            target,
            api_key,
            prefix: format!("https://example.com/load/{run_id}/{k}/"),
            sent: 0,
            request: Vec::new(),
        }
    }
}

impl Requests for Creates {
    fn next(&mut self) -> &[u8] {
        self.sent += 1;
        let body = format!(r#"{{"long_url":"{}{}"}}"#, self.prefix, self.sent);
        self.request = client::json_request(
            "POST",
            &self.target.host,
            &format!("{}/v1/urls", self.target.base_path),
            self.api_key.expose_secret(),
            &body,
        );
        &self.request
    }

    fn expected(&self, status: u16) -> bool {
        status == 201
    }
}

/// Edits for one connection: `PATCH /v1/urls/{code}` with a new long URL each time, codes drawn like redirects'.
pub struct Edits {
    target: Target,
    api_key: SecretString,
    codes: Arc<Vec<String>>,
    draw: Draw,
    rng: SmallRng,
    prefix: String,
    sent: u64,
    request: Vec<u8>,
}

impl Edits {
    /// Edits of `codes` (links of `api_key`'s owner) for connection `k` of run `run_id`.
    pub fn new(
        target: Target,
        api_key: SecretString,
        codes: Arc<Vec<String>>,
        draw: Draw,
        run_id: &str,
        k: usize,
    ) -> Self {
        Self {
            target,
            api_key,
            codes,
            draw,
            rng: SmallRng::seed_from_u64(0xed17 ^ k as u64),
            prefix: format!("https://example.com/edited/{run_id}/{k}/"),
            sent: 0,
            request: Vec::new(),
        }
    }
}

impl Requests for Edits {
    fn next(&mut self) -> &[u8] {
        self.sent += 1;
        let code = &self.codes[self.draw.pick(&mut self.rng, self.codes.len())];
        let body = format!(r#"{{"long_url":"{}{}"}}"#, self.prefix, self.sent);
        self.request = client::json_request(
            "PATCH",
            &self.target.host,
            &format!("{}/v1/urls/{code}", self.target.base_path),
            self.api_key.expose_secret(),
            &body,
        );
        &self.request
    }

    fn expected(&self, status: u16) -> bool {
        status == 200
    }
}
