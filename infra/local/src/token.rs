//! Local admin tokens: HS256 JWTs signed with a key kept in the data directory (mode 0600).
//!
//! They stand in for the API Gateway JWT authorizer: `serve` verifies them and hands the
//! settings handler the same claims (`company_id`, `role`) the authorizer would.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const KEY_FILE: &str = "local-token.key";
const ISSUER: &str = "reimbi-local";
/// Tokens are for a working day of local use.
const LIFETIME_SECS: i64 = 24 * 3600;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub company_id: String,
    pub role: String,
    pub iat: i64,
    pub exp: i64,
}

/// The signing key; created on first use.
pub struct TokenKey(SecretBox<Vec<u8>>);

impl TokenKey {
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let path: PathBuf = data_dir.join(KEY_FILE);
        match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => return Ok(Self(SecretBox::new(Box::new(bytes)))),
            Ok(_) => anyhow::bail!("{} is too short to be a signing key", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        let mut key = vec![0u8; 32];
        getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("OS random source: {e}"))?;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        // Two processes racing here: the first rename wins and both then read the same key.
        if std::fs::hard_link(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
            return Self::load_or_create(data_dir);
        }
        let _ = std::fs::remove_file(&tmp);
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(self.0.expose_secret()).expect("HMAC takes keys of any length")
    }

    pub fn mint(&self, company: &str, role: &str, now: i64) -> String {
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = Claims {
            iss: ISSUER.into(),
            company_id: company.into(),
            role: role.into(),
            iat: now,
            exp: now + LIFETIME_SECS,
        };
        let payload = B64.encode(serde_json::to_vec(&claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The claims of a token this key signed that has not expired; `None` otherwise.
    pub fn verify(&self, token: &str, now: i64) -> Option<Claims> {
        let mut parts = token.split('.');
        let (encoded_header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&B64.decode(encoded_header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let mut mac = self.mac();
        mac.update(format!("{encoded_header}.{payload}").as_bytes());
        mac.verify_slice(&B64.decode(sig).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&B64.decode(payload).ok()?).ok()?;
        (claims.iss == ISSUER && now < claims.exp).then_some(claims)
    }
}

pub fn print_token(data_dir: &Path, company: &str, role: &str) -> anyhow::Result<()> {
    reimbi_shared::CompanyId::parse(company).map_err(|e| anyhow::anyhow!("--company: {e}"))?;
    if role.is_empty() || role.len() > 64 {
        anyhow::bail!("--role must be 1 to 64 characters");
    }
    let key = TokenKey::load_or_create(data_dir)?;
    println!("{}", key.mint(company, role, chrono::Utc::now().timestamp()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_verifies_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let key = TokenKey::load_or_create(dir.path()).unwrap();
        let t = key.mint("acme", "admin", 1000);
        let claims = key.verify(&t, 1001).unwrap();
        assert_eq!((claims.company_id.as_str(), claims.role.as_str()), ("acme", "admin"));
        assert!(key.verify(&t, 1000 + LIFETIME_SECS).is_none());
    }

    #[test]
    fn a_token_from_another_data_dir_or_tampered_is_refused() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let ka = TokenKey::load_or_create(a.path()).unwrap();
        let kb = TokenKey::load_or_create(b.path()).unwrap();
        let t = ka.mint("acme", "admin", 1000);
        assert!(kb.verify(&t, 1001).is_none());
        let mut parts: Vec<String> = t.split('.').map(String::from).collect();
        parts[1] = B64.encode(br#"{"iss":"reimbi-local","company_id":"other","role":"admin","iat":1000,"exp":999999}"#);
        assert!(ka.verify(&parts.join("."), 1001).is_none());
        assert!(ka.verify("not-a-token", 1001).is_none());
    }

    #[test]
    fn the_key_is_kept_with_mode_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let k1 = TokenKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let k2 = TokenKey::load_or_create(dir.path()).unwrap();
        assert!(k2.verify(&k1.mint("acme", "admin", 5), 6).is_some());
    }
}
