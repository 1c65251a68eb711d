//! [`EmbeddedSecretStore`]: secrets in memory, or one file per secret readable by its owner only.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};

use super::write_atomically;
use crate::domain::SecretRef;
use crate::ports::{BoxError, SecretError, SecretStore};

#[derive(Clone)]
enum Backend {
    Memory(Arc<Mutex<HashMap<SecretRef, SecretString>>>),
    /// A `0700` directory of `0600` files, one per secret.
    Dir(PathBuf),
}

/// The secret store of tests and of `reimbi-local`. Cheap to clone; clones share the secrets.
#[derive(Clone)]
pub struct EmbeddedSecretStore {
    backend: Backend,
}

impl std::fmt::Debug for EmbeddedSecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Memory(_) => f.write_str("EmbeddedSecretStore(memory)"),
            Backend::Dir(dir) => write!(f, "EmbeddedSecretStore({})", dir.display()),
        }
    }
}

impl EmbeddedSecretStore {
    pub fn in_memory() -> Self {
        Self { backend: Backend::Memory(Arc::default()) }
    }

    /// Keeps secrets as files in `dir`, created (mode `0700`) if missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, BoxError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        Ok(Self { backend: Backend::Dir(dir) })
    }
}

/// The secret's file name. Ids are `[A-Za-z0-9._-]`, so after a prefix that ends in a letter
/// and a dot the name can be neither a path nor `.`/`..`.
fn file_name(secret: &SecretRef) -> String {
    match secret {
        SecretRef::WebhookSigning(id) => format!("webhook-signing.{id}"),
        SecretRef::AshbyApiKey(company) => format!("ashby-api-key.{company}"),
    }
}

fn unavailable(e: std::io::Error) -> SecretError {
    SecretError::Unavailable(Box::new(e))
}

#[async_trait]
impl SecretStore for EmbeddedSecretStore {
    async fn get_secret(&self, secret: &SecretRef) -> Result<Option<SecretString>, SecretError> {
        match &self.backend {
            Backend::Memory(map) => Ok(map.lock().unwrap().get(secret).cloned()),
            Backend::Dir(dir) => match std::fs::read_to_string(dir.join(file_name(secret))) {
                Ok(value) => Ok(Some(SecretString::from(value))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(unavailable(e)),
            },
        }
    }

    async fn put_secret(&self, secret: &SecretRef, value: &SecretString) -> Result<(), SecretError> {
        match &self.backend {
            Backend::Memory(map) => {
                map.lock().unwrap().insert(secret.clone(), value.clone());
                Ok(())
            }
            Backend::Dir(dir) => {
                write_atomically(&dir.join(file_name(secret)), value.expose_secret().as_bytes(), 0o600)
                    .map_err(unavailable)
            }
        }
    }
}
