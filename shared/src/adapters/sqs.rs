//! SQS adapter: accepted webhook deliveries go on a standard queue, the body as is and the
//! ids as String message attributes (names in [`crate::ports::queue_attributes`]).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::ProvideErrorMetadata;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::ports::{EventQueue, QueueError, QueuedEvent, Redelivery, queue_attributes};

/// SQS refuses visibility timeouts over 12 hours.
const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 3600);

/// The queue of accepted events, and the processor's handle to delay a failed message.
#[derive(Debug, Clone)]
pub struct SqsEventQueue {
    client: Client,
    queue_url: String,
}

impl SqsEventQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> QueueError {
    QueueError::Unavailable(Box::new(e))
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().map_err(unavailable)
}

#[async_trait]
impl EventQueue for SqsEventQueue {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), QueueError> {
        let received_at = event.received_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(&event.body)
            .message_attributes(queue_attributes::EVENT_ID, string_attribute(event.event_id.as_str())?)
            .message_attributes(queue_attributes::COMPANY_ID, string_attribute(event.company_id.as_str())?)
            .message_attributes(queue_attributes::WEBHOOK_ID, string_attribute(event.webhook_id.as_str())?)
            .message_attributes(queue_attributes::RECEIVED_AT, string_attribute(&received_at)?)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

#[async_trait]
impl Redelivery for SqsEventQueue {
    async fn redeliver_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay.min(MAX_VISIBILITY).as_secs() as i32;
        let res = self
            .client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // The 12 h cap counts from the first receive: past it, the message simply comes back
            // when its current timeout ends, which is the latest SQS allows.
            Err(e) if e.as_service_error().and_then(|e| e.code()) == Some("InvalidParameterValue") => {
                tracing::warn!(delay_secs = seconds, "SQS refused a visibility timeout beyond its 12 h limit");
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}
