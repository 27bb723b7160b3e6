//! Checks `Snowlink-Signature: t=UNIX,v1=HEX` (HMAC-SHA256 of `"{t}.{body}"` keyed by the webhook's secret) as a
//! receiver would. Written here rather than taken from the shortener: the load tool checks the shortener's
//! signatures against its own reading of the Contract, so a change on either side shows as bad signatures.

use ring::hmac;

/// The header a delivery's signature travels in.
pub const HEADER: &str = "Snowlink-Signature";

/// How far the signed time may be from the receiver's clock, in seconds (as a receiver checks against replays).
pub const TOLERANCE_SECONDS: u64 = 300;

/// Whether `header` signs `body` with `secret` at a time within [`TOLERANCE_SECONDS`] of `now` (Unix seconds).
/// Any of several `v1` values may match (a sender rotating secrets sends two).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64) -> bool {
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
    if now.abs_diff(time) > TOLERANCE_SECONDS {
        return false;
    }
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{time}.").into_bytes();
    signed.extend_from_slice(body);
    signatures
        .iter()
        .any(|signature| hmac::verify(&key, &signed, signature).is_ok())
}

/// The header value for `body` signed with `secret` at `unix_time`: what a sender puts in [`HEADER`] (the tests
/// sign with it).
pub fn sign(secret: &str, unix_time: i64, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut signed = format!("{unix_time}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={unix_time},v1={}",
        hex::encode(hmac::sign(&key, &signed).as_ref())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"click"}"#;

    #[test]
    fn a_signature_computed_elsewhere_verifies() {
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"whsec_test",
        //     b"1700000000." + b"{\"id\":\"evt_1\",\"type\":\"click\"}", hashlib.sha256).hexdigest())'
        let header =
            "t=1700000000,v1=10cc902762c2f5bfdc0240b09abf1ee8525777f14f361cb904bc2f8e689626be";

        assert_eq!(sign("whsec_test", 1_700_000_000, BODY), header);
        assert!(verify("whsec_test", header, BODY, 1_700_000_000));
    }

    #[test]
    fn another_secret_body_or_a_stale_time_does_not_verify() {
        let header = sign("whsec_test", 1_700_000_000, BODY);

        assert!(!verify("whsec_other", &header, BODY, 1_700_000_000));
        assert!(!verify("whsec_test", &header, b"{}", 1_700_000_000));
        assert!(!verify("whsec_test", &header, BODY, 1_700_000_301));
        assert!(!verify("whsec_test", "t=x,v1=00", BODY, 1_700_000_000));
        assert!(!verify("whsec_test", "", BODY, 1_700_000_000));
    }
}
