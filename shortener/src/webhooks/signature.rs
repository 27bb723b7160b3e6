//! `Snowlink-Signature: t=UNIX,v1=HEX`: HMAC-SHA256 of `"{t}.{body}"` keyed by the webhook's secret. The time
//! is inside what is signed, so a receiver that checks it against its clock refuses a delivery replayed later.
//!
//! A receiver checks a delivery like this (Python; `verify` below is the same in Rust):
//!
//! ```text
//! t, v1 = (dict(part.split("=", 1) for part in header.split(","))[k] for k in ("t", "v1"))
//! expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
//! ok = hmac.compare_digest(expected, v1) and abs(time.time() - int(t)) <= 300
//! ```
//!
//! HMAC from ring: already built as rustls's crypto provider, so it adds no crate (RustCrypto's `hmac` 0.13 is in
//! the tree too, through postgres-protocol, but with `sha2` 0.11 beside the workspace's 0.10, and no constant-time
//! check of its own that ring's `hmac::verify` does not also give).

use std::time::Duration;

use ring::hmac;

/// The header a delivery's signature travels in.
pub const HEADER: &str = "Snowlink-Signature";

/// The value of [`HEADER`] for `body` sent at `unix_time` (seconds) with `secret`.
pub fn sign(secret: &str, unix_time: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(unix_time.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("t={unix_time},v1={}", hex::encode(context.sign().as_ref()))
}

/// Whether `header` is a valid signature of `body` with `secret`, made within `tolerance` of `now` (seconds):
/// what a receiver runs. Any `v1` that matches will do (a sender rotating secrets may send two). The comparison
/// takes the same time however many bytes match.
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> bool {
    let mut time = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => time = value.parse::<i64>().ok(),
            Some(("v1", value)) => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let Some(time) = time else {
        return false;
    };
    let tolerance = i64::try_from(tolerance.as_secs()).unwrap_or(i64::MAX);
    if now.abs_diff(time) > tolerance.unsigned_abs() {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{time}.").into_bytes();
    signed.extend_from_slice(body);
    signatures
        .iter()
        .any(|signature| hmac::verify(&key, &signed, signature).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"click"}"#;
    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn the_signature_matches_one_computed_elsewhere() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //     b"1700000000." + b"{\"id\":\"evt_1\",\"type\":\"click\"}", hashlib.sha256).hexdigest())'
        let expected =
            "t=1700000000,v1=10cc902762c2f5bfdc0240b09abf1ee8525777f14f361cb904bc2f8e689626be";

        assert_eq!(sign(SECRET, 1_700_000_000, BODY), expected);
        assert!(verify(SECRET, expected, BODY, 1_700_000_000, FIVE_MINUTES));
    }

    #[test]
    fn another_secret_body_or_time_does_not_verify() {
        let header = sign(SECRET, 1_700_000_000, BODY);

        assert!(!verify(
            "whsec_other",
            &header,
            BODY,
            1_700_000_000,
            FIVE_MINUTES
        ));
        assert!(!verify(SECRET, &header, b"{}", 1_700_000_000, FIVE_MINUTES));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify(SECRET, &moved, BODY, 1_700_000_000, FIVE_MINUTES));
    }

    #[test]
    fn a_signature_older_or_newer_than_the_tolerance_is_refused() {
        let header = sign(SECRET, 1_700_000_000, BODY);

        assert!(verify(SECRET, &header, BODY, 1_700_000_300, FIVE_MINUTES));
        assert!(!verify(SECRET, &header, BODY, 1_700_000_301, FIVE_MINUTES));
        assert!(!verify(SECRET, &header, BODY, 1_699_999_699, FIVE_MINUTES));
    }

    #[test]
    fn a_malformed_header_does_not_verify() {
        for header in [
            "",
            "t=x,v1=00",
            "v1=00",
            "t=1700000000",
            "t=1700000000,v1=zz",
        ] {
            assert!(
                !verify(SECRET, header, BODY, 1_700_000_000, FIVE_MINUTES),
                "{header:?}"
            );
        }
    }

    #[test]
    fn any_matching_v1_of_several_verifies() {
        let good = sign(SECRET, 1_700_000_000, BODY);
        let v1 = good.split_once(",v1=").expect("v1").1;
        let header = format!("t=1700000000,v1={},v1={v1}", "00".repeat(32));

        assert!(verify(SECRET, &header, BODY, 1_700_000_000, FIVE_MINUTES));
    }
}
