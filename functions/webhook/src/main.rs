//! The webhook Lambda: wires the AWS adapters to the handler and serves it behind API Gateway.

use std::sync::Arc;

use reimbi_shared::adapters::{dynamo::DynamoStore, secretsmanager::SecretsManagerSecretStore, sqs::SqsEventQueue};
use reimbi_shared::{cache, config, ports::SystemClock, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init(telemetry::LogFormat::Json);
    let aws = aws_config::load_from_env().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), config::required("TABLE_NAME")?));
    let queue = Arc::new(SqsEventQueue::new(aws_sdk_sqs::Client::new(&aws), config::required("QUEUE_URL")?));
    let secrets =
        Arc::new(SecretsManagerSecretStore::new(aws_sdk_secretsmanager::Client::new(&aws), config::secrets_prefix()));
    // The cache never outlives a replaced credential's grace period.
    let cache_ttl = cache::ttl_within(config::rotation_grace()?);
    let deps = webhook::WebhookDeps::with_cache_ttl(
        store.clone(),
        store.clone(),
        secrets,
        store,
        queue,
        Arc::new(SystemClock),
        cache_ttl,
    );
    lambda_http::run(webhook::router(Arc::new(deps))).await
}
