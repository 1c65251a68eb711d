//! The settings Lambda: wiring only (configuration, clients, the router from the library).

use std::sync::Arc;

use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::dynamo::DynamoStore;
use reimbi_shared::adapters::secretsmanager::SecretsManagerSecretStore;
use reimbi_shared::config;
use reimbi_shared::ports::SystemClock;
use reimbi_shared::telemetry::{self, LogFormat};
use settings::{SettingsDeps, router};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(LogFormat::Json);
    let table = config::required("TABLE_NAME")?;
    let rotation_grace = config::rotation_grace()?;
    let aws = aws_config::load_from_env().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
    let secrets =
        Arc::new(SecretsManagerSecretStore::new(aws_sdk_secretsmanager::Client::new(&aws), config::secrets_prefix()));
    let deps = SettingsDeps {
        settings: store.clone(),
        webhooks: store.clone(),
        events: store.clone(),
        candidates: store,
        secrets,
        ashby: Arc::new(HttpAshbyApi::new(config::ashby_api_url())),
        clock: Arc::new(SystemClock),
        public_base_url: config::optional("PUBLIC_BASE_URL"),
        rotation_grace,
        invalidators: Vec::new(),
    };
    lambda_http::run(router(Arc::new(deps))).await
}
