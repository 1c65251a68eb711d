//! Secrets Manager adapter: one secret per webhook signing secret and per company API key,
//! named by [`SecretRef::name`] under the deployment's `SECRETS_PREFIX`.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
use secrecy::{ExposeSecret, SecretString};

use crate::domain::SecretRef;
use crate::ports::{SecretError, SecretStore};

#[derive(Debug, Clone)]
pub struct SecretsManagerSecretStore {
    client: Client,
    prefix: String,
}

impl SecretsManagerSecretStore {
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self { client, prefix: prefix.into() }
    }

    async fn put_value(&self, name: &str, value: &SecretString) -> Result<bool, SecretError> {
        let res = self.client.put_secret_value().secret_id(name).secret_string(value.expose_secret()).send().await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.as_service_error(), Some(PutSecretValueError::ResourceNotFoundException(_))) => {
                Ok(false)
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> SecretError {
    SecretError::Unavailable(Box::new(e))
}

#[async_trait]
impl SecretStore for SecretsManagerSecretStore {
    async fn get_secret(&self, secret: &SecretRef) -> Result<Option<SecretString>, SecretError> {
        let res = self.client.get_secret_value().secret_id(secret.name(&self.prefix)).send().await;
        match res {
            Ok(out) => Ok(out.secret_string.map(SecretString::from)),
            Err(e) if matches!(e.as_service_error(), Some(GetSecretValueError::ResourceNotFoundException(_))) => {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put_secret(&self, secret: &SecretRef, value: &SecretString) -> Result<(), SecretError> {
        let name = secret.name(&self.prefix);
        if self.put_value(&name, value).await? {
            return Ok(());
        }
        let res = self.client.create_secret().name(&name).secret_string(value.expose_secret()).send().await;
        match res {
            Ok(_) => Ok(()),
            // Another writer created it in between: store the value as a new version.
            Err(e) if matches!(e.as_service_error(), Some(CreateSecretError::ResourceExistsException(_))) => {
                match self.put_value(&name, value).await? {
                    true => Ok(()),
                    false => Err(unavailable(e)),
                }
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
