//! The processor's feed: what the SQS event source mapping does in AWS. It receives batches,
//! hands them to the processor as the same `SqsEvent` Lambda would, and deletes the records
//! the processor did not report as failed (failed ones come back after their visibility timeout,
//! and after the maximum receives go to the dead-letter store).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsEvent;
use reimbi_shared::adapters::embedded::EmbeddedQueue;
use reimbi_shared::ports::queue_attributes as attr;
use serde_json::json;
use tokio::sync::watch;

/// Records per batch, as the template's event source mapping.
const BATCH_SIZE: usize = 10;
/// How often an idle embedded queue is looked at.
const IDLE_POLL: Duration = Duration::from_millis(50);

pub enum QueueSource {
    Embedded(Arc<EmbeddedQueue>),
    Sqs { client: aws_sdk_sqs::Client, url: String },
}

/// One received message, in the shape Lambda's SQS event carries it.
struct Received {
    message_id: String,
    receipt_handle: String,
    body: String,
    receive_count: u32,
    attributes: Vec<(String, String)>,
}

impl QueueSource {
    async fn receive(&self) -> anyhow::Result<Vec<Received>> {
        match self {
            QueueSource::Embedded(q) => {
                let msgs = q.receive(BATCH_SIZE).await.map_err(|e| anyhow::anyhow!("embedded queue: {e}"))?;
                Ok(msgs
                    .into_iter()
                    .map(|m| Received {
                        message_id: m.message_id,
                        receipt_handle: m.receipt_handle,
                        receive_count: m.receive_count,
                        attributes: vec![
                            (attr::EVENT_ID.into(), m.event.event_id.to_string()),
                            (attr::COMPANY_ID.into(), m.event.company_id.to_string()),
                            (attr::WEBHOOK_ID.into(), m.event.webhook_id.to_string()),
                            (attr::RECEIVED_AT.into(), reimbi_shared::format_time(&m.event.received_at)),
                        ],
                        body: m.event.body,
                    })
                    .collect())
            }
            QueueSource::Sqs { client, url } => {
                let out = client
                    .receive_message()
                    .queue_url(url)
                    .max_number_of_messages(BATCH_SIZE as i32)
                    // Short long-poll, so a shutdown is noticed within a second.
                    .wait_time_seconds(1)
                    .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                    .message_attribute_names("All")
                    .send()
                    .await
                    .map_err(|e| anyhow::anyhow!("SQS receive: {}", aws_sdk_sqs::error::DisplayErrorContext(e)))?;
                Ok(out
                    .messages
                    .unwrap_or_default()
                    .into_iter()
                    .map(|m| {
                        let receive_count = m
                            .attributes()
                            .and_then(|a| {
                                a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(1);
                        let attributes = m
                            .message_attributes()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|(k, v)| v.string_value().map(|s| (k.clone(), s.to_owned())))
                                    .collect()
                            })
                            .unwrap_or_default();
                        Received {
                            message_id: m.message_id.unwrap_or_default(),
                            receipt_handle: m.receipt_handle.unwrap_or_default(),
                            body: m.body.unwrap_or_default(),
                            receive_count,
                            attributes,
                        }
                    })
                    .collect())
            }
        }
    }

    async fn delete(&self, receipt_handle: &str) -> anyhow::Result<()> {
        match self {
            QueueSource::Embedded(q) => {
                q.delete(receipt_handle).await.map_err(|e| anyhow::anyhow!("embedded queue delete: {e}"))
            }
            QueueSource::Sqs { client, url } => client
                .delete_message()
                .queue_url(url)
                .receipt_handle(receipt_handle)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("SQS delete: {}", aws_sdk_sqs::error::DisplayErrorContext(e))),
        }
    }
}

/// The batch as Lambda delivers it: built from the same JSON shape, so the processor sees
/// exactly what its Lambda sees.
fn to_sqs_event(batch: &[Received]) -> SqsEvent {
    let records: Vec<_> = batch
        .iter()
        .map(|m| {
            let message_attributes: serde_json::Map<String, serde_json::Value> = m
                .attributes
                .iter()
                .map(|(k, v)| (k.clone(), json!({ "stringValue": v, "dataType": "String", "stringListValues": [], "binaryListValues": [] })))
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": { "ApproximateReceiveCount": m.receive_count.to_string() },
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:local:000000000000:reimbi-ashby-events",
                "awsRegion": "local",
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("the SQS event shape deserialises")
}

pub async fn run(source: QueueSource, deps: Arc<processor::ProcessorDeps>, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            break;
        }
        let batch = match source.receive().await {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "receiving from the queue failed");
                let _ = tokio::time::timeout(Duration::from_secs(1), shutdown.changed()).await;
                continue;
            }
        };
        if batch.is_empty() {
            if matches!(source, QueueSource::Embedded(_)) {
                let _ = tokio::time::timeout(IDLE_POLL, shutdown.changed()).await;
            }
            continue;
        }
        let response = processor::handle(&deps, to_sqs_event(&batch)).await;
        let failed: HashSet<String> = response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect();
        for m in batch.iter().filter(|m| !failed.contains(&m.message_id)) {
            if let Err(e) = source.delete(&m.receipt_handle).await {
                tracing::error!(error = %e, message_id = %m.message_id, "deleting a processed message failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_event_lambda_would_deliver() {
        let batch = vec![Received {
            message_id: "m1".into(),
            receipt_handle: "r1".into(),
            body: "{}".into(),
            receive_count: 3,
            attributes: vec![(attr::EVENT_ID.into(), "evt_1".into())],
        }];
        let event = to_sqs_event(&batch);
        let r = &event.records[0];
        assert_eq!(r.message_id.as_deref(), Some("m1"));
        assert_eq!(r.attributes.get("ApproximateReceiveCount").map(String::as_str), Some("3"));
        assert_eq!(r.message_attributes[attr::EVENT_ID].string_value.as_deref(), Some("evt_1"));
    }
}
