//! Reading one SQS record: the message attributes the webhook function set (`eventId`,
//! `companyId`, `webhookId`, `receivedAt`), SQS's `ApproximateReceiveCount`, and the body (the
//! verified webhook payload). A record that lacks any of them is [`Malformed`].

use aws_lambda_events::sqs::SqsMessage;
use reimbi_shared::domain::{
    ACTION_STAGE_CHANGE, CompanyId, EventId, StageChange, Timestamp, WebhookEnvelope, WebhookId,
};
use reimbi_shared::ports::queue_attributes;

/// SQS's count of deliveries of the message, this one included.
pub const RECEIVE_COUNT_ATTRIBUTE: &str = "ApproximateReceiveCount";

/// A record that carries an accepted event.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub receipt_handle: Option<String>,
    /// 1 on the first delivery.
    pub receive_count: u32,
    pub event: EventKey,
    /// The envelope's `action` (what the event log shows).
    pub action: String,
    pub ashby_candidate_id: Option<String>,
    /// `data.application` of a `candidateStageChange`; `None` for any other action.
    pub stage_change: Option<StageChange>,
}

/// Which event a record carries. (The body itself is not kept: it holds personal data and
/// must not reach a log line through a `Debug` print.)
#[derive(Debug, Clone, PartialEq)]
pub struct EventKey {
    pub company_id: CompanyId,
    pub event_id: EventId,
    pub received_at: Timestamp,
}

/// A record that can never be processed, with whatever could be read of it.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// What is wrong, for the log (never the body itself).
    pub problem: String,
    pub company_id: Option<CompanyId>,
    pub event_id: Option<EventId>,
    pub received_at: Option<Timestamp>,
    pub action: Option<String>,
}

#[derive(Debug, Clone)]
pub enum ParsedRecord {
    Accepted(Box<Accepted>),
    Malformed(Malformed),
}

fn attribute<'a>(record: &'a SqsMessage, name: &str) -> Option<&'a str> {
    record.message_attributes.get(name).and_then(|a| a.string_value.as_deref()).map(str::trim).filter(|v| !v.is_empty())
}

/// Reads the record. Ids are read first so that even a record with a bad body can be recorded
/// against its event.
pub fn parse(record: &SqsMessage) -> ParsedRecord {
    let company_id = attribute(record, queue_attributes::COMPANY_ID).and_then(|v| CompanyId::parse(v).ok());
    let event_id = attribute(record, queue_attributes::EVENT_ID).and_then(|v| EventId::parse(v).ok());
    let received_at = attribute(record, queue_attributes::RECEIVED_AT)
        .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    let webhook_id = attribute(record, queue_attributes::WEBHOOK_ID).and_then(|v| WebhookId::parse(v).ok());
    let envelope = record.body.as_deref().map(|b| WebhookEnvelope::parse(b.as_bytes()));
    let malformed = |problem: &str| {
        ParsedRecord::Malformed(Malformed {
            problem: problem.to_owned(),
            company_id: company_id.clone(),
            event_id: event_id.clone(),
            received_at,
            action: match &envelope {
                Some(Ok(e)) => Some(e.action.clone()),
                _ => None,
            },
        })
    };
    let Some(message_id) = record.message_id.clone().filter(|m| !m.is_empty()) else {
        return malformed("the record has no message id");
    };
    let (Some(company), Some(event), Some(received), Some(_webhook)) =
        (company_id.clone(), event_id.clone(), received_at, webhook_id)
    else {
        return malformed("a message attribute (companyId, eventId, webhookId, receivedAt) is missing or invalid");
    };
    let envelope = match &envelope {
        None => return malformed("the record has no body"),
        // The parse error is not quoted: it may repeat parts of the body.
        Some(Err(_)) => return malformed("the body is not an Ashby webhook envelope"),
        Some(Ok(envelope)) => envelope.clone(),
    };
    let receive_count =
        record.attributes.get(RECEIVE_COUNT_ATTRIBUTE).and_then(|v| v.trim().parse::<u32>().ok()).unwrap_or(1).max(1);
    let ashby_candidate_id = envelope.ashby_candidate_id().map(str::to_owned);
    let stage_change = envelope.stage_change.filter(|_| envelope.action == ACTION_STAGE_CHANGE);
    ParsedRecord::Accepted(Box::new(Accepted {
        message_id,
        receipt_handle: record.receipt_handle.clone(),
        receive_count,
        event: EventKey { company_id: company, event_id: event, received_at: received },
        action: envelope.action,
        ashby_candidate_id,
        stage_change,
    }))
}
