//! Wiring: the backends (embedded or AWS), the HTTP app and the processor worker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use reimbi_shared::EmailAddress;
use reimbi_shared::adapters::ashby_http::HttpAshbyApi;
use reimbi_shared::adapters::embedded::{EmbeddedQueue, EmbeddedSecretStore, EmbeddedStore, OutboxMailer};
use reimbi_shared::cache::Invalidate;
use reimbi_shared::config;
use reimbi_shared::ports::*;
use tokio::sync::watch;

use crate::ServeArgs;
use crate::token::TokenKey;
use crate::worker::{self, QueueSource};

pub const DEFAULT_DATA_DIR: &str = ".reimbi-local";
/// Where invitation links point when `APP_BASE_URL` is not set.
const DEFAULT_APP_BASE_URL: &str = "https://app.reimbi.com";
/// The sender when `SENDER_EMAIL` is not set.
const DEFAULT_SENDER: &str = "no-reply@reimbi.com";
/// The embedded queue's visibility timeout: what SQS would use for a processor with a 30 s timeout is
/// 180 s, but locally a crashed worker should not hide an event for minutes.
const EMBEDDED_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(60);

/// Every port the three handlers need, from one place.
pub struct Backends {
    pub settings: Arc<dyn SettingsStore>,
    pub webhooks: Arc<dyn WebhookStore>,
    pub events: Arc<dyn EventLog>,
    pub candidates: Arc<dyn CandidateStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub queue: Arc<dyn EventQueue>,
    pub redelivery: Arc<dyn Redelivery>,
    pub mailer: Arc<dyn Mailer>,
    pub source: QueueSource,
    pub description: String,
}

fn embedded_backends(data_dir: &Path, clock: Arc<dyn Clock>, max_receives: u32) -> anyhow::Result<Backends> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let store = EmbeddedStore::open(data_dir.join("reimbi.redb"))
        .map_err(|e| anyhow::anyhow!("opening the embedded store in {}: {e}", data_dir.display()))?;
    let secrets = EmbeddedSecretStore::open(data_dir.join("secrets"))
        .map_err(|e| anyhow::anyhow!("opening the secret store: {e}"))?;
    let outbox = data_dir.join("outbox");
    let queue = EmbeddedQueue::on(&store, clock).with_limits(EMBEDDED_VISIBILITY_TIMEOUT, max_receives);
    let mailer = OutboxMailer::new(&outbox).map_err(|e| anyhow::anyhow!("opening the outbox: {e}"))?;
    let store = Arc::new(store);
    let queue = Arc::new(queue);
    Ok(Backends {
        settings: store.clone(),
        webhooks: store.clone(),
        events: store.clone(),
        candidates: store,
        secrets: Arc::new(secrets),
        queue: queue.clone(),
        redelivery: queue.clone(),
        mailer: Arc::new(mailer),
        source: QueueSource::Embedded(queue),
        description: format!("embedded storage in {}, emails to {}", data_dir.display(), outbox.display()),
    })
}

async fn aws_backends(sender: &EmailAddress) -> anyhow::Result<Backends> {
    use reimbi_shared::adapters::{dynamo, secretsmanager, ses, sqs};
    let sdk = aws_config::load_from_env().await;
    let table = config::optional("TABLE_NAME").unwrap_or_else(|| "reimbi-ashby".to_owned());
    let prefix = config::secrets_prefix();
    let emulator = config::optional("AWS_ENDPOINT_URL").is_some();

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    ensure_table(&ddb, &table).await?;
    let sqs_client = aws_sdk_sqs::Client::new(&sdk);
    let queue_url = match config::optional("QUEUE_URL") {
        Some(url) => url,
        None => ensure_queue(&sqs_client, &format!("{table}-events")).await?,
    };
    let sesv2 = aws_sdk_sesv2::Client::new(&sdk);
    if emulator {
        // An emulator starts empty: the sender identity a real account verifies once must exist.
        let _ = sesv2.create_email_identity().email_identity(sender.as_str()).send().await;
    }
    let store = Arc::new(dynamo::DynamoStore::new(ddb, table.clone()));
    let queue = Arc::new(sqs::SqsEventQueue::new(sqs_client.clone(), queue_url.clone()));
    Ok(Backends {
        settings: store.clone(),
        webhooks: store.clone(),
        events: store.clone(),
        candidates: store,
        secrets: Arc::new(secretsmanager::SecretsManagerSecretStore::new(
            aws_sdk_secretsmanager::Client::new(&sdk),
            prefix,
        )),
        queue: queue.clone(),
        redelivery: queue,
        mailer: Arc::new(ses::SesMailer::new(sesv2)),
        source: QueueSource::Sqs { client: sqs_client, url: queue_url.clone() },
        description: format!("AWS adapters: table {table}, queue {queue_url}"),
    })
}

/// Creates the table when it does not exist (an emulator, or a first run against a sandbox account).
async fn ensure_table(client: &aws_sdk_dynamodb::Client, table: &str) -> anyhow::Result<()> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
            tracing::info!(table, "creating the DynamoDB table");
            reimbi_shared::adapters::dynamo::create_table(client, table)
                .await
                .map_err(|e| anyhow::anyhow!("creating table {table}: {e}"))
        }
        Err(e) => Err(anyhow::anyhow!("describing table {table}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
}

async fn ensure_queue(client: &aws_sdk_sqs::Client, name: &str) -> anyhow::Result<String> {
    if let Ok(out) = client.get_queue_url().queue_name(name).send().await
        && let Some(url) = out.queue_url
    {
        return Ok(url);
    }
    tracing::info!(queue = name, "creating the SQS queue");
    let out = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("creating queue {name}: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    out.queue_url.context("SQS returned no queue URL")
}

/// A running server: its address and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub description: String,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    worker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting requests, lets in-flight requests and the current batch finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        let served = self.server.await.context("the HTTP server task failed")?;
        self.worker.await.context("the processor task failed")?;
        served
    }
}

fn env_or(name: &str, default: &str) -> String {
    config::optional(name).unwrap_or_else(|| default.to_owned())
}

/// Builds everything and starts serving on `args.listen`.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Running> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let sender = EmailAddress::parse(&env_or("SENDER_EMAIL", DEFAULT_SENDER))
        .map_err(|e| anyhow::anyhow!("SENDER_EMAIL: {e}"))?;
    let app_base_url = env_or("APP_BASE_URL", DEFAULT_APP_BASE_URL).trim_end_matches('/').to_owned();
    let grace = config::rotation_grace()?;
    let public_base_url = config::optional("PUBLIC_BASE_URL").map(|u| u.trim_end_matches('/').to_owned());
    let ashby_url = args.ashby_api_url.clone().unwrap_or_else(config::ashby_api_url);
    let max_receives = config::max_receive_count()?;

    let backends = if args.aws {
        aws_backends(&sender).await?
    } else {
        embedded_backends(&args.data_dir, clock.clone(), max_receives)?
    };
    let token_key = Arc::new(TokenKey::load_or_create(&args.data_dir)?);
    let ashby: Arc<dyn AshbyApi> = Arc::new(HttpAshbyApi::new(ashby_url.trim_end_matches('/')));

    let webhook_deps = Arc::new(webhook::WebhookDeps::with_cache_ttl(
        backends.webhooks.clone(),
        backends.settings.clone(),
        backends.secrets.clone(),
        backends.events.clone(),
        backends.queue.clone(),
        clock.clone(),
        reimbi_shared::cache::ttl_within(grace),
    ));
    let processor_deps = Arc::new(processor::ProcessorDeps::new(
        backends.settings.clone(),
        backends.events.clone(),
        backends.candidates.clone(),
        backends.secrets.clone(),
        ashby.clone(),
        backends.mailer.clone(),
        backends.redelivery.clone(),
        clock.clone(),
        sender,
        app_base_url,
        max_receives,
    ));
    let invalidators: Vec<Arc<dyn Invalidate>> = vec![webhook_deps.clone(), processor_deps.clone()];
    let settings_deps = Arc::new(settings::SettingsDeps {
        settings: backends.settings.clone(),
        webhooks: backends.webhooks.clone(),
        events: backends.events.clone(),
        candidates: backends.candidates.clone(),
        secrets: backends.secrets.clone(),
        ashby,
        clock: clock.clone(),
        public_base_url,
        rotation_grace: grace,
        invalidators,
    });

    let admin = settings::router(settings_deps).layer(middleware::from_fn_with_state(token_key, local_authorizer));
    // Both routers answer unknown paths in the contract's error format; the webhook router
    // hands everything that is not its own route to the admin router.
    let app = webhook::router(webhook_deps).fallback_service(admin);

    let listener =
        tokio::net::TcpListener::bind(args.listen).await.with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (shutdown, rx) = watch::channel(false);
    let mut server_rx = rx.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_rx.wait_for(|stop| *stop).await;
            })
            .await
            .context("serving HTTP")
    });
    let worker = tokio::spawn(worker::run(backends.source, processor_deps, rx));
    Ok(Running { addr, description: backends.description, shutdown, server, worker })
}

/// Stands in for the API Gateway JWT authorizer: a valid local token becomes the same request
/// context (with `company_id` and `role` claims) the authorizer gives the settings function.
/// Without one the request reaches the handler with no claims and is answered 401 there.
async fn local_authorizer(State(key): State<Arc<TokenKey>>, mut req: Request, next: Next) -> Response {
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    if let Some(claims) = token.and_then(|t| key.verify(t, chrono::Utc::now().timestamp())) {
        let ctx = settings::auth::request_context(&[
            ("iss", claims.iss.as_str()),
            ("company_id", claims.company_id.as_str()),
            ("role", claims.role.as_str()),
        ]);
        req.extensions_mut().insert(ctx);
    }
    next.run(req).await
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let running = start(&args).await?;
    tracing::info!(address = %running.addr, backends = %running.description, "reimbi-local is serving");
    // On stdout, so scripts can read the address (`--listen 127.0.0.1:0` picks a free port).
    println!("reimbi-local listening on http://{} ({})", running.addr, running.description);
    eprintln!("admin token: reimbi-local token --company <ID> --data-dir {}", args.data_dir.display());
    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight work");
    running.stop().await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub async fn run_ashby_sim(listen: SocketAddr, api_key: &str) -> anyhow::Result<()> {
    eprintln!("Ashby simulator on http://{listen} (API key {api_key:?} accepted; demo candidate seeded)");
    tokio::select! {
        served = ashby_sim::serve(listen, api_key) => served.context("running the Ashby simulator"),
        _ = shutdown_signal() => Ok(()),
    }
}
