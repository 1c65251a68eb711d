//! The processor Lambda: wiring only (configuration, clients, the handler from the library),
//! triggered by the events queue with `ReportBatchItemFailures`.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use processor::{ProcessorDeps, handle};
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::dynamo::DynamoStore;
use reimbi_shared::adapters::secretsmanager::SecretsManagerSecretStore;
use reimbi_shared::adapters::ses::SesMailer;
use reimbi_shared::adapters::sqs::SqsEventQueue;
use reimbi_shared::config;
use reimbi_shared::ports::SystemClock;
use reimbi_shared::telemetry::{self, LogFormat};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init(LogFormat::Json);
    let table = config::required("TABLE_NAME")?;
    let queue_url = config::required("QUEUE_URL")?;
    let app_base_url = config::required("APP_BASE_URL")?;
    let sender = config::sender_email()?;
    let max_receive_count = config::max_receive_count()?;
    let aws = aws_config::load_from_env().await;
    let store = Arc::new(DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table));
    let secrets =
        Arc::new(SecretsManagerSecretStore::new(aws_sdk_secretsmanager::Client::new(&aws), config::secrets_prefix()));
    let deps = Arc::new(ProcessorDeps::new(
        store.clone(),
        store.clone(),
        store,
        secrets,
        Arc::new(HttpAshbyApi::new(config::ashby_api_url())),
        Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(&aws))),
        Arc::new(SqsEventQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url)),
        Arc::new(SystemClock),
        sender,
        app_base_url,
        max_receive_count,
    ));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let deps = deps.clone();
        async move { Ok::<SqsBatchResponse, lambda_runtime::Error>(handle(&deps, event.payload).await) }
    }))
    .await
}
