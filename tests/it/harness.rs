//! The test harness: a fresh set of AWS resources in moto for each test that needs them.
//!
//! `make test` starts moto and exports `AWS_ENDPOINT_URL`; every test here fails loudly when
//! it is missing or moto does not answer (it never skips).

// Not every test module uses every helper.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use reimbi_shared::adapters::dynamo::{self, DynamoStore};
use reimbi_shared::adapters::secretsmanager::SecretsManagerSecretStore;
use reimbi_shared::adapters::ses::SesMailer;
use reimbi_shared::adapters::sqs::SqsEventQueue;

/// The queue's redrive setting, as the SAM template has it.
pub const MAX_RECEIVE_COUNT: u32 = 5;

/// moto's URL from `AWS_ENDPOINT_URL`; panics with a clear message when it is unset or moto
/// does not answer `GET /moto-api/`.
pub fn moto_endpoint() -> String {
    static CHECKED: OnceLock<String> = OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
            assert!(
                !endpoint.trim().is_empty(),
                "AWS_ENDPOINT_URL is not set: these tests need moto. Run `make test`, or start \
                 `moto_server -H 127.0.0.1 -p 5000` and export AWS_ENDPOINT_URL=http://127.0.0.1:5000"
            );
            let endpoint = endpoint.trim().trim_end_matches('/').to_owned();
            if let Err(e) = ping_moto(&endpoint) {
                panic!("moto does not answer at AWS_ENDPOINT_URL={endpoint}: {e}. Start it (`make moto`) or run `make test`");
            }
            endpoint
        })
        .clone()
}

/// `GET /moto-api/` over a plain socket (the harness needs no HTTP client for this).
fn ping_moto(endpoint: &str) -> Result<(), String> {
    let host_port = endpoint.strip_prefix("http://").ok_or("the endpoint must be http://host:port")?;
    let host_port = host_port.split('/').next().unwrap_or(host_port);
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host_port} resolves to nothing"))?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET /moto-api/ HTTP/1.0\r\nHost: {host_port}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    let head = String::from_utf8_lossy(&head);
    if head.starts_with("HTTP/") && head.ends_with("200") { Ok(()) } else { Err(format!("unexpected answer {head:?}")) }
}

/// A name no other test (nor an earlier run against the same moto) uses.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Fresh AWS resources in moto: a table, a queue with its dead-letter queue, a secrets prefix
/// and a verified SES sender.
#[derive(Debug, Clone)]
pub struct AwsEnv {
    pub config: SdkConfig,
    pub endpoint: String,
    pub table: String,
    pub queue_url: String,
    pub dlq_url: String,
    /// Ends with `/`, like a deployment's `SECRETS_PREFIX`.
    pub secrets_prefix: String,
    pub sender: String,
}

impl AwsEnv {
    pub async fn new() -> Self {
        let endpoint = moto_endpoint();
        // Explicit test credentials and endpoint: these tests can never reach a real account.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
            .load()
            .await;

        let table = unique("reimbi-it");
        dynamo::create_table(&aws_sdk_dynamodb::Client::new(&config), &table).await.expect("moto creates the table");

        let sqs = aws_sdk_sqs::Client::new(&config);
        let dlq_url = sqs
            .create_queue()
            .queue_name(unique("reimbi-it-dlq"))
            .send()
            .await
            .expect("moto creates the dead-letter queue")
            .queue_url
            .expect("a queue url");
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("moto answers the dead-letter queue's attributes")
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .expect("a queue ARN");
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT });
        let queue_url = sqs
            .create_queue()
            .queue_name(unique("reimbi-it-events"))
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .send()
            .await
            .expect("moto creates the queue")
            .queue_url
            .expect("a queue url");

        let sender = format!("{}@reimbi.example", unique("invites"));
        aws_sdk_sesv2::Client::new(&config)
            .create_email_identity()
            .email_identity(&sender)
            .send()
            .await
            .expect("moto verifies the sender");

        Self {
            config,
            endpoint,
            table,
            queue_url,
            dlq_url,
            secrets_prefix: format!("{}/", unique("reimbi-it")),
            sender,
        }
    }

    pub fn dynamo_client(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.config)
    }
    /// The item as DynamoDB holds it (to check attributes the store's API does not show, e.g. `ttl`).
    pub async fn raw_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        use aws_sdk_dynamodb::types::AttributeValue::S;
        let out = self
            .dynamo_client()
            .get_item()
            .table_name(&self.table)
            .key("pk", S(pk.to_owned()))
            .key("sk", S(sk.to_owned()))
            .send()
            .await
            .expect("GetItem on moto");
        out.item.unwrap_or_else(|| panic!("no item {pk} / {sk}"))
    }
    pub fn sqs_client(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.config)
    }
    pub fn secrets_client(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config)
    }
    pub fn ses_client(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.config)
    }

    pub fn dynamo_store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamo_client(), &self.table)
    }
    pub fn sqs_queue(&self) -> SqsEventQueue {
        SqsEventQueue::new(self.sqs_client(), &self.queue_url)
    }
    pub fn secret_store(&self) -> SecretsManagerSecretStore {
        SecretsManagerSecretStore::new(self.secrets_client(), &self.secrets_prefix)
    }
    pub fn ses_mailer(&self) -> SesMailer {
        SesMailer::new(self.ses_client())
    }

    /// Every message visible on the queue now, with all attributes; deletes nothing (the
    /// messages stay in flight for the queue's visibility timeout).
    pub async fn receive_all(&self) -> Vec<Message> {
        receive_all_from(&self.sqs_client(), &self.queue_url).await
    }

    /// Every message visible on the dead-letter queue now (see [`AwsEnv::receive_all`]).
    pub async fn receive_all_dead_letters(&self) -> Vec<Message> {
        receive_all_from(&self.sqs_client(), &self.dlq_url).await
    }

    /// The raw MIME of every raw email moto has sent to `addr` (from `/moto-api/data.json`).
    pub async fn sent_emails_to(&self, addr: &str) -> Vec<String> {
        let url = format!("{}/moto-api/data.json", self.endpoint);
        let data: serde_json::Value = reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .expect("moto serves data.json")
            .json()
            .await
            .expect("data.json is JSON");
        let mut out = Vec::new();
        collect_raw_messages(data.pointer("/ses/RawMessage").unwrap_or(&serde_json::Value::Null), addr, &mut out);
        out
    }
}

/// moto lists raw messages (`{ destinations, raw_data, source, id }`); its layout has changed
/// between versions, so walk whatever nesting there is.
fn collect_raw_messages(v: &serde_json::Value, addr: &str, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_raw_messages(i, addr, out)),
        serde_json::Value::Object(m) => match (m.get("raw_data").and_then(|r| r.as_str()), m.get("destinations")) {
            (Some(raw), Some(destinations)) => {
                let bracketed = format!("<{}>", addr.to_lowercase());
                let to_addr = destinations.as_array().into_iter().flatten().filter_map(|d| d.as_str()).any(|d| {
                    let d = d.to_lowercase();
                    d == addr.to_lowercase() || d.ends_with(&bracketed)
                });
                if to_addr {
                    out.push(raw.to_owned());
                }
            }
            _ => m.values().for_each(|i| collect_raw_messages(i, addr, out)),
        },
        _ => {}
    }
}

async fn receive_all_from(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<Message> {
    let mut all = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("moto receives messages");
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}
