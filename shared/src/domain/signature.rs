//! Ashby's webhook signature: `Ashby-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`.
//!
//! The check runs over the exact bytes received, before anything is parsed, and compares in
//! constant time. A [`VerifiedBody`] can only be obtained from a successful check.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::secret::SigningSecret;

type HmacSha256 = Hmac<Sha256>;

/// The header Ashby sends the signature in (header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "ashby-signature";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Ashby-Signature header is missing")]
    Missing,
    #[error("the Ashby-Signature header is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// The contract's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::Missing => "missing_signature",
            SignatureError::Malformed => "malformed_signature",
            SignatureError::Mismatch => "invalid_signature",
        }
    }
}

/// Parses `sha256=<hex>` into the 32 digest bytes. Hex digits of either case are accepted.
pub fn parse_signature_header(value: &str) -> Result<[u8; 32], SignatureError> {
    let hex_part = value.trim().strip_prefix("sha256=").ok_or(SignatureError::Malformed)?;
    if hex_part.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out).map_err(|_| SignatureError::Malformed)?;
    Ok(out)
}

/// The raw body of a request whose signature matched.
#[derive(Debug, Clone, Copy)]
pub struct VerifiedBody<'a>(&'a [u8]);

impl<'a> VerifiedBody<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// Verifies `header` (the value of `Ashby-Signature`, if any) over `body` with `secret`.
pub fn verify_signature<'a>(
    secret: &SigningSecret,
    header: Option<&[u8]>,
    body: &'a [u8],
) -> Result<VerifiedBody<'a>, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let header = std::str::from_utf8(header).map_err(|_| SignatureError::Malformed)?;
    if header.trim().is_empty() {
        return Err(SignatureError::Missing);
    }
    let expected = parse_signature_header(header)?;
    let mut mac = HmacSha256::new_from_slice(secret.key_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected).map_err(|_| SignatureError::Mismatch)?;
    Ok(VerifiedBody(body))
}

/// Signs `body` as Ashby does; for the simulator, tests and benchmarks.
pub fn sign(secret: &SigningSecret, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.key_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use secrecy::SecretString;

    fn secret(s: &str) -> SigningSecret {
        SigningSecret::new(SecretString::from(s.to_owned()))
    }

    const EXAMPLE_BODY: &[u8] = include_bytes!("../../../infra/fixtures/ashby/webhook-candidateStageChange.json");
    const EXAMPLE_SECRET: &str = "whsec-example-3f9a1c7e5b2d4a6c8e0f1a3b5c7d9e1f";
    const EXAMPLE_SIGNATURE: &str = "sha256=6d10569c489f234c0d4be358dd68d48d76a7aa01c9a083869ab2fb443fc3a8b2";

    #[test]
    fn the_documented_example_verifies() {
        assert_eq!(EXAMPLE_BODY.len(), 1554);
        assert!(verify_signature(&secret(EXAMPLE_SECRET), Some(EXAMPLE_SIGNATURE.as_bytes()), EXAMPLE_BODY).is_ok());
        assert_eq!(sign(&secret(EXAMPLE_SECRET), EXAMPLE_BODY), EXAMPLE_SIGNATURE);
    }

    #[test]
    fn rejects_a_body_signed_with_another_secret() {
        let sig = sign(&secret("another"), EXAMPLE_BODY);
        assert_eq!(
            verify_signature(&secret(EXAMPLE_SECRET), Some(sig.as_bytes()), EXAMPLE_BODY).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn rejects_a_body_changed_by_one_byte() {
        let mut body = EXAMPLE_BODY.to_vec();
        body[10] ^= 1;
        assert_eq!(
            verify_signature(&secret(EXAMPLE_SECRET), Some(EXAMPLE_SIGNATURE.as_bytes()), &body).unwrap_err(),
            SignatureError::Mismatch
        );
    }

    #[test]
    fn accepts_uppercase_hex_and_surrounding_whitespace() {
        let upper = format!(" sha256={} ", EXAMPLE_SIGNATURE[7..].to_uppercase());
        assert!(verify_signature(&secret(EXAMPLE_SECRET), Some(upper.as_bytes()), EXAMPLE_BODY).is_ok());
    }

    #[test]
    fn tells_missing_from_malformed_headers() {
        let s = secret("k");
        assert_eq!(verify_signature(&s, None, b"{}").unwrap_err(), SignatureError::Missing);
        assert_eq!(verify_signature(&s, Some(b""), b"{}").unwrap_err(), SignatureError::Missing);
        for bad in [
            "sha1=abcd",
            "abc",
            "sha256=",
            "sha256=zz",
            &format!("sha256={}", "a".repeat(63)),
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                verify_signature(&s, Some(bad.as_bytes()), b"{}").unwrap_err(),
                SignatureError::Malformed,
                "{bad}"
            );
        }
        assert_eq!(verify_signature(&s, Some(&[0xff, 0xfe]), b"{}").unwrap_err(), SignatureError::Malformed);
    }

    proptest! {
        #[test]
        fn any_body_signed_with_the_secret_verifies(key in "[ -~]{1,64}", body in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let s = secret(&key);
            let sig = sign(&s, &body);
            prop_assert!(verify_signature(&s, Some(sig.as_bytes()), &body).is_ok());
        }

        #[test]
        fn parsing_arbitrary_headers_never_panics(header in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = verify_signature(&secret("k"), Some(&header), b"{}");
        }

        #[test]
        fn a_flipped_signature_bit_is_always_refused(bit in 0usize..256) {
            let s = secret(EXAMPLE_SECRET);
            let mut raw = parse_signature_header(EXAMPLE_SIGNATURE).unwrap();
            raw[bit / 8] ^= 1 << (bit % 8);
            let header = format!("sha256={}", hex::encode(raw));
            prop_assert_eq!(verify_signature(&s, Some(header.as_bytes()), EXAMPLE_BODY).unwrap_err(), SignatureError::Mismatch);
        }
    }
}
