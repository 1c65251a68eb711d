//! DynamoDB adapter: one table (`TABLE_NAME`) holds settings, policies, staff, webhook
//! credentials, the event log, candidates and invite tokens.
//!
//! Key layout (also declared by the SAM template and [`create_table`]): `pk` + `sk`, one GSI
//! `gsi1` (`gsi1pk` + `gsi1sk`, projection ALL) for newest-first listings, TTL on `ttl`.
//! Items are flat typed attributes so they read well in the console. Every write that must
//! not race is a conditional write, never a read followed by a write.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
};
use base64::Engine as _;

use crate::domain::*;
use crate::ports::{BoxError, CandidateStore, EventLog, SettingsStore, StoreError, WebhookStore};

type Item = HashMap<String, AttributeValue>;

const GSI1: &str = "gsi1";
/// Expired webhook credentials stay readable for a week after their grace ends (for support).
const WEBHOOK_TTL_SLACK: chrono::Duration = chrono::Duration::days(7);

/// Creates the table with exactly the layout above, waits until it is active, and turns on
/// TTL on `ttl`.
pub async fn create_table(client: &Client, name: &str) -> Result<(), BoxError> {
    let attr =
        |n: &str| AttributeDefinition::builder().attribute_name(n).attribute_type(ScalarAttributeType::S).build();
    let key = |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build();
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .attribute_definitions(attr("gsi1pk")?)
        .attribute_definitions(attr("gsi1sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(GSI1)
                .key_schema(key("gsi1pk", KeyType::Hash)?)
                .key_schema(key("gsi1sk", KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()?,
        )
        .send()
        .await?;
    let mut waited = Duration::ZERO;
    loop {
        let table = client.describe_table().table_name(name).send().await?;
        if table.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        if waited > Duration::from_secs(120) {
            return Err(format!("table {name} did not become active").into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        waited += Duration::from_millis(500);
    }
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build()?)
        .send()
        .await?;
    Ok(())
}

/// The table as SettingsStore, WebhookStore, EventLog and CandidateStore.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }

    async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client.put_item().table_name(&self.table).set_item(Some(item)).send().await.map_err(unavailable)?;
        Ok(())
    }

    /// Every item of a company whose sort key starts with `prefix`, in sort key order.
    async fn query_prefix(&self, company: &CompanyId, prefix: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(company_pk(company)))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// One newest-first page of the `gsi1` partition `gsi1pk`.
    async fn list_page(
        &self,
        company: &CompanyId,
        gsi1pk: String,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let limit = limit.clamp(1, 1000);
        let start = cursor.map(|c| decode_cursor(c, &company_pk(company), &gsi1pk)).transpose()?;
        // One extra item tells whether another page exists, so the last page has no cursor.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(GSI1)
            .key_condition_expression("gsi1pk = :p")
            .expression_attribute_values(":p", s(gsi1pk))
            .scan_index_forward(false)
            .limit(limit as i32 + 1)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(unavailable)?;
        let mut items = out.items.unwrap_or_default();
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| encode_cursor(&page_key(last)))
        } else {
            // Fewer items than asked for with a key means DynamoDB stopped at its 1 MB page size.
            out.last_evaluated_key.filter(|k| !k.is_empty()).map(|k| encode_cursor(&k))
        };
        Ok((items, next))
    }
}

// ---- keys -------------------------------------------------------------------------------

fn company_pk(c: &CompanyId) -> String {
    format!("COMPANY#{c}")
}
const SETTINGS_SK: &str = "SETTINGS";
fn policy_sk(p: &PolicyId) -> String {
    format!("POLICY#{p}")
}
fn staff_sk(e: &EmailAddress) -> String {
    format!("STAFF#{e}")
}
fn event_sk(e: &EventId) -> String {
    format!("EVENT#{e}")
}
fn candidate_sk(c: &CandidateId) -> String {
    format!("CANDIDATE#{c}")
}
fn webhook_pk(w: &WebhookId) -> String {
    format!("WEBHOOK#{w}")
}

// ---- attribute helpers ------------------------------------------------------------------

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// RFC 3339 with nanoseconds and `Z`: lossless, and fixed width so strings sort as times do
/// (the lease condition compares them as strings).
fn time(t: &Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// The listing sort key: the time in microseconds (enough to order), then the id as tie-break.
fn sort_key(t: &Timestamp, id: &str) -> String {
    format!("{}#{id}", t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn put_opt(item: &mut Item, name: &str, v: Option<impl Into<String>>) {
    if let Some(v) = v {
        item.insert(name.to_owned(), s(v));
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn opt_str<'a>(item: &'a Item, name: &str) -> Result<Option<&'a str>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::S(v)) => Ok(Some(v)),
        Some(_) => Err(corrupt(&format!("attribute {name} is not a string"))),
    }
}

fn req_str<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    opt_str(item, name)?.ok_or_else(|| corrupt(&format!("attribute {name} is missing")))
}

fn req_bool(item: &Item, name: &str) -> Result<bool, StoreError> {
    match item.get(name) {
        Some(AttributeValue::Bool(b)) => Ok(*b),
        _ => Err(corrupt(&format!("attribute {name} is not a boolean"))),
    }
}

fn req_u64(item: &Item, name: &str) -> Result<u64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(&format!("attribute {name} is not a count"))),
        _ => Err(corrupt(&format!("attribute {name} is not a number"))),
    }
}

fn parse_time(name: &str, v: &str) -> Result<Timestamp, StoreError> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| corrupt(&format!("attribute {name} is not a time")))
}

fn req_time(item: &Item, name: &str) -> Result<Timestamp, StoreError> {
    parse_time(name, req_str(item, name)?)
}

fn opt_time(item: &Item, name: &str) -> Result<Option<Timestamp>, StoreError> {
    opt_str(item, name)?.map(|v| parse_time(name, v)).transpose()
}

/// Serde-named enums (`Outcome`, `Reason`, …) as their string codes.
fn code<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => unreachable!("the enums stored here serialise as strings"),
    }
}

fn from_code<T: serde::de::DeserializeOwned>(name: &str, v: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(v.to_owned()))
        .map_err(|_| corrupt(&format!("attribute {name} has an unknown value")))
}

fn req_code<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<T, StoreError> {
    from_code(name, req_str(item, name)?)
}

fn opt_code<T: serde::de::DeserializeOwned>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    opt_str(item, name)?.map(|v| from_code(name, v)).transpose()
}

/// The domain's `parse`-constructed types, read back from string attributes.
trait FromAttr: Sized {
    fn from_attr(s: &str) -> Result<Self, ParseError>;
}

macro_rules! from_attr {
    ($($t:ty),*) => {$(
        impl FromAttr for $t {
            fn from_attr(s: &str) -> Result<Self, ParseError> {
                <$t>::parse(s)
            }
        }
    )*};
}
from_attr!(CompanyId, PolicyId, WebhookId, EventId, CandidateId, EmailAddress);

fn opt_id<T: FromAttr>(item: &Item, name: &str) -> Result<Option<T>, StoreError> {
    opt_str(item, name)?
        .map(|v| T::from_attr(v).map_err(|_| corrupt(&format!("attribute {name} is not valid"))))
        .transpose()
}

fn id<T: FromAttr>(item: &Item, name: &str) -> Result<T, StoreError> {
    opt_id(item, name)?.ok_or_else(|| corrupt(&format!("attribute {name} is missing")))
}

// ---- errors and cursors -----------------------------------------------------------------

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    StoreError::Unavailable(Box::new(e))
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error().and_then(|e| e.code()) == Some("ConditionalCheckFailedException")
}

/// The index key of an item, which is what DynamoDB's `LastEvaluatedKey` holds for `gsi1`.
fn page_key(item: &Item) -> Item {
    ["pk", "sk", "gsi1pk", "gsi1sk"]
        .into_iter()
        .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
        .collect()
}

fn encode_cursor(key: &Item) -> String {
    let plain: HashMap<&str, &str> =
        key.iter().filter_map(|(k, v)| v.as_s().ok().map(|v| (k.as_str(), v.as_str()))).collect();
    let json = serde_json::to_vec(&plain).expect("a map of strings serialises");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// Accepts only a cursor for this listing: the four key attributes, of this partition.
fn decode_cursor(cursor: &str, pk: &str, gsi1pk: &str) -> Result<Item, StoreError> {
    let json =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let plain: HashMap<String, String> = serde_json::from_slice(&json).map_err(|_| StoreError::InvalidCursor)?;
    let valid = plain.len() == 4
        && plain.get("pk").map(String::as_str) == Some(pk)
        && plain.get("gsi1pk").map(String::as_str) == Some(gsi1pk)
        && plain.get("sk").is_some_and(|v| !v.is_empty())
        && plain.get("gsi1sk").is_some_and(|v| !v.is_empty());
    if !valid {
        return Err(StoreError::InvalidCursor);
    }
    Ok(plain.into_iter().map(|(k, v)| (k, s(v))).collect())
}

// ---- records <-> items ------------------------------------------------------------------

fn settings_to_item(v: &IntegrationSettings) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(company_pk(&v.company_id))),
        ("sk".into(), s(SETTINGS_SK)),
        ("companyId".into(), s(v.company_id.as_str())),
        ("enabled".into(), AttributeValue::Bool(v.enabled)),
        ("triggerFieldTitle".into(), s(&v.trigger_field_title)),
        ("policyFieldTitle".into(), s(&v.policy_field_title)),
        ("revision".into(), n(v.revision)),
    ]);
    put_opt(&mut item, "apiKeyHint", v.api_key_hint.as_deref());
    put_opt(&mut item, "approverRole", v.approver_role.map(|r| r.as_str()));
    put_opt(&mut item, "hiringTeamRole", v.hiring_team_role.as_deref());
    put_opt(&mut item, "backupApproverEmail", v.backup_approver_email.as_ref().map(|e| e.as_str()));
    put_opt(&mut item, "currentWebhookId", v.current_webhook_id.as_ref().map(|w| w.as_str()));
    put_opt(&mut item, "webhookSecretCreatedAt", v.webhook_secret_created_at.as_ref().map(time));
    put_opt(&mut item, "updatedAt", v.updated_at.as_ref().map(time));
    item
}

fn settings_from_item(item: &Item) -> Result<IntegrationSettings, StoreError> {
    Ok(IntegrationSettings {
        company_id: id(item, "companyId")?,
        enabled: req_bool(item, "enabled")?,
        api_key_hint: opt_str(item, "apiKeyHint")?.map(str::to_owned),
        approver_role: opt_code(item, "approverRole")?,
        hiring_team_role: opt_str(item, "hiringTeamRole")?.map(str::to_owned),
        backup_approver_email: opt_id(item, "backupApproverEmail")?,
        trigger_field_title: req_str(item, "triggerFieldTitle")?.to_owned(),
        policy_field_title: req_str(item, "policyFieldTitle")?.to_owned(),
        current_webhook_id: opt_id(item, "currentWebhookId")?,
        webhook_secret_created_at: opt_time(item, "webhookSecretCreatedAt")?,
        updated_at: opt_time(item, "updatedAt")?,
        revision: req_u64(item, "revision")?,
    })
}

fn policy_to_item(v: &Policy) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(company_pk(&v.company_id))),
        ("sk".into(), s(policy_sk(&v.policy_id))),
        ("companyId".into(), s(v.company_id.as_str())),
        ("policyId".into(), s(v.policy_id.as_str())),
        ("name".into(), s(&v.name)),
        ("enabled".into(), AttributeValue::Bool(v.enabled)),
        ("submissionGuidelines".into(), s(&v.submission_guidelines)),
        ("updatedAt".into(), s(time(&v.updated_at))),
    ]);
    put_opt(&mut item, "defaultApproverEmail", v.default_approver_email.as_ref().map(|e| e.as_str()));
    item
}

fn policy_from_item(item: &Item) -> Result<Policy, StoreError> {
    Ok(Policy {
        company_id: id(item, "companyId")?,
        policy_id: id(item, "policyId")?,
        name: req_str(item, "name")?.to_owned(),
        enabled: req_bool(item, "enabled")?,
        // DynamoDB keeps empty strings in non-key attributes, but be lenient with old items.
        submission_guidelines: opt_str(item, "submissionGuidelines")?.unwrap_or_default().to_owned(),
        default_approver_email: opt_id(item, "defaultApproverEmail")?,
        updated_at: req_time(item, "updatedAt")?,
    })
}

fn staff_to_item(v: &StaffMember) -> Item {
    Item::from([
        ("pk".into(), s(company_pk(&v.company_id))),
        ("sk".into(), s(staff_sk(&v.email))),
        ("companyId".into(), s(v.company_id.as_str())),
        ("email".into(), s(v.email.as_str())),
        ("name".into(), s(&v.name)),
        ("canApprove".into(), AttributeValue::Bool(v.can_approve)),
        ("updatedAt".into(), s(time(&v.updated_at))),
    ])
}

fn staff_from_item(item: &Item) -> Result<StaffMember, StoreError> {
    Ok(StaffMember {
        company_id: id(item, "companyId")?,
        email: id(item, "email")?,
        name: req_str(item, "name")?.to_owned(),
        can_approve: req_bool(item, "canApprove")?,
        updated_at: req_time(item, "updatedAt")?,
    })
}

fn webhook_to_item(v: &WebhookCredential) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(webhook_pk(&v.webhook_id))),
        ("sk".into(), s("WEBHOOK")),
        ("webhookId".into(), s(v.webhook_id.as_str())),
        ("companyId".into(), s(v.company_id.as_str())),
        ("createdAt".into(), s(time(&v.created_at))),
    ]);
    if let Some(expires) = v.expires_at {
        item.insert("expiresAt".into(), s(time(&expires)));
        item.insert("ttl".into(), n((expires + WEBHOOK_TTL_SLACK).timestamp()));
    }
    item
}

fn webhook_from_item(item: &Item) -> Result<WebhookCredential, StoreError> {
    Ok(WebhookCredential {
        webhook_id: id(item, "webhookId")?,
        company_id: id(item, "companyId")?,
        created_at: req_time(item, "createdAt")?,
        expires_at: opt_time(item, "expiresAt")?,
    })
}

fn event_to_item(v: &EventLogEntry) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(company_pk(&v.company_id))),
        ("sk".into(), s(event_sk(&v.event_id))),
        ("gsi1pk".into(), s(format!("EVENTS#{}", v.company_id))),
        ("gsi1sk".into(), s(sort_key(&v.received_at, v.event_id.as_str()))),
        ("companyId".into(), s(v.company_id.as_str())),
        ("eventId".into(), s(v.event_id.as_str())),
        ("receivedAt".into(), s(time(&v.received_at))),
        ("action".into(), s(&v.action)),
        ("outcome".into(), s(code(&v.outcome))),
        ("updatedAt".into(), s(time(&v.updated_at))),
    ]);
    put_opt(&mut item, "ashbyCandidateId", v.ashby_candidate_id.as_deref());
    put_opt(&mut item, "reason", v.reason.map(|r| r.as_str()));
    put_opt(&mut item, "candidateId", v.candidate_id.as_ref().map(|c| c.as_str()));
    item
}

fn event_from_item(item: &Item) -> Result<EventLogEntry, StoreError> {
    Ok(EventLogEntry {
        company_id: id(item, "companyId")?,
        event_id: id(item, "eventId")?,
        received_at: req_time(item, "receivedAt")?,
        action: req_str(item, "action")?.to_owned(),
        ashby_candidate_id: opt_str(item, "ashbyCandidateId")?.map(str::to_owned),
        outcome: req_code(item, "outcome")?,
        reason: opt_code(item, "reason")?,
        candidate_id: opt_id(item, "candidateId")?,
        updated_at: req_time(item, "updatedAt")?,
    })
}

fn candidate_to_item(v: &CandidateRecord) -> Item {
    let mut item = Item::from([
        ("pk".into(), s(company_pk(&v.company_id))),
        ("sk".into(), s(candidate_sk(&v.candidate_id))),
        ("gsi1pk".into(), s(format!("CANDIDATES#{}", v.company_id))),
        ("gsi1sk".into(), s(sort_key(&v.invited_at, v.candidate_id.as_str()))),
        ("candidateId".into(), s(v.candidate_id.as_str())),
        ("companyId".into(), s(v.company_id.as_str())),
        ("status".into(), s(code(&v.status))),
        ("name".into(), s(&v.name)),
        ("email".into(), s(v.email.as_str())),
        ("ashbyCandidateId".into(), s(&v.ashby_candidate_id)),
        ("ashbyApplicationId".into(), s(&v.ashby_application_id)),
        ("policyId".into(), s(v.policy_id.as_str())),
        ("policyName".into(), s(&v.policy_name)),
        ("approverEmail".into(), s(v.approver_email.as_str())),
        ("approverSource".into(), s(code(&v.approver_source))),
        ("invitedAt".into(), s(time(&v.invited_at))),
        ("inviteStatus".into(), s(code(&v.invite_email.status))),
        ("sourceEventId".into(), s(v.source_event_id.as_str())),
    ]);
    put_opt(&mut item, "inviteMessageId", v.invite_email.message_id.as_deref());
    put_opt(&mut item, "leaseUntil", v.invite_email.lease_until.as_ref().map(time));
    put_opt(&mut item, "inviteSentAt", v.invite_email.sent_at.as_ref().map(time));
    item
}

fn candidate_from_item(item: &Item) -> Result<CandidateRecord, StoreError> {
    Ok(CandidateRecord {
        candidate_id: id(item, "candidateId")?,
        company_id: id(item, "companyId")?,
        status: req_code(item, "status")?,
        name: req_str(item, "name")?.to_owned(),
        email: id(item, "email")?,
        ashby_candidate_id: req_str(item, "ashbyCandidateId")?.to_owned(),
        ashby_application_id: req_str(item, "ashbyApplicationId")?.to_owned(),
        policy_id: id(item, "policyId")?,
        policy_name: req_str(item, "policyName")?.to_owned(),
        approver_email: id(item, "approverEmail")?,
        approver_source: req_code(item, "approverSource")?,
        invited_at: req_time(item, "invitedAt")?,
        invite_email: InviteEmail {
            status: req_code(item, "inviteStatus")?,
            message_id: opt_str(item, "inviteMessageId")?.map(str::to_owned),
            lease_until: opt_time(item, "leaseUntil")?,
            sent_at: opt_time(item, "inviteSentAt")?,
        },
        source_event_id: id(item, "sourceEventId")?,
    })
}

fn invite_token_to_item(v: &InviteToken) -> Item {
    Item::from([
        ("pk".into(), s(format!("INVITE#{}", v.token_hash))),
        ("sk".into(), s("INVITE")),
        ("tokenHash".into(), s(&v.token_hash)),
        ("companyId".into(), s(v.company_id.as_str())),
        ("candidateId".into(), s(v.candidate_id.as_str())),
        ("expiresAt".into(), s(time(&v.expires_at))),
        ("ttl".into(), n(v.expires_at.timestamp())),
    ])
}

// ---- ports ------------------------------------------------------------------------------

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn get_settings(&self, company: &CompanyId) -> Result<Option<IntegrationSettings>, StoreError> {
        self.get(company_pk(company), SETTINGS_SK).await?.as_ref().map(settings_from_item).transpose()
    }

    async fn save_settings(&self, settings: &IntegrationSettings) -> Result<(), StoreError> {
        let req = self.client.put_item().table_name(&self.table).set_item(Some(settings_to_item(settings)));
        let req = if settings.revision <= 1 {
            req.condition_expression("attribute_not_exists(pk)")
        } else {
            req.condition_expression("revision = :prev").expression_attribute_values(":prev", n(settings.revision - 1))
        };
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn get_policy(&self, company: &CompanyId, policy: &PolicyId) -> Result<Option<Policy>, StoreError> {
        self.get(company_pk(company), &policy_sk(policy)).await?.as_ref().map(policy_from_item).transpose()
    }

    async fn put_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.put(policy_to_item(policy)).await
    }

    async fn list_policies(&self, company: &CompanyId) -> Result<Vec<Policy>, StoreError> {
        self.query_prefix(company, "POLICY#").await?.iter().map(policy_from_item).collect()
    }

    async fn get_staff(&self, company: &CompanyId, email: &EmailAddress) -> Result<Option<StaffMember>, StoreError> {
        self.get(company_pk(company), &staff_sk(email)).await?.as_ref().map(staff_from_item).transpose()
    }

    async fn put_staff(&self, member: &StaffMember) -> Result<(), StoreError> {
        self.put(staff_to_item(member)).await
    }

    async fn list_staff(&self, company: &CompanyId) -> Result<Vec<StaffMember>, StoreError> {
        self.query_prefix(company, "STAFF#").await?.iter().map(staff_from_item).collect()
    }
}

#[async_trait]
impl WebhookStore for DynamoStore {
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookCredential>, StoreError> {
        self.get(webhook_pk(id), "WEBHOOK").await?.as_ref().map(webhook_from_item).transpose()
    }

    async fn put_webhook(&self, credential: &WebhookCredential) -> Result<(), StoreError> {
        self.put(webhook_to_item(credential)).await
    }
}

#[async_trait]
impl EventLog for DynamoStore {
    async fn insert_if_absent(&self, entry: &EventLogEntry) -> Result<bool, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(event_to_item(entry)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn upsert(&self, entry: &EventLogEntry) -> Result<(), StoreError> {
        self.put(event_to_item(entry)).await
    }

    async fn get_event(&self, company: &CompanyId, event: &EventId) -> Result<Option<EventLogEntry>, StoreError> {
        self.get(company_pk(company), &event_sk(event)).await?.as_ref().map(event_from_item).transpose()
    }

    async fn set_outcome(
        &self,
        company: &CompanyId,
        event: &EventId,
        update: &OutcomeUpdate,
    ) -> Result<(), StoreError> {
        let mut set = vec!["outcome = :outcome", "updatedAt = :at"];
        let mut remove = vec![];
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(company_pk(company)))
            .key("sk", s(event_sk(event)))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":outcome", s(code(&update.outcome)))
            .expression_attribute_values(":at", s(time(&update.at)));
        // The reason always belongs to the new outcome; a candidate id, once known, stays.
        match update.reason {
            Some(r) => {
                set.push("reason = :reason");
                req = req.expression_attribute_values(":reason", s(r.as_str()));
            }
            None => remove.push("reason"),
        }
        if let Some(c) = &update.candidate_id {
            set.push("candidateId = :candidate");
            req = req.expression_attribute_values(":candidate", s(c.as_str()));
        }
        let mut expr = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        match req.update_expression(expr).send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list_events(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<EventLogEntry>, StoreError> {
        let (items, next_cursor) = self.list_page(company, format!("EVENTS#{company}"), limit, cursor).await?;
        Ok(Page { items: items.iter().map(event_from_item).collect::<Result<_, _>>()?, next_cursor })
    }
}

#[async_trait]
impl CandidateStore for DynamoStore {
    async fn create_if_absent(&self, record: &CandidateRecord) -> Result<(CandidateRecord, bool), StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(candidate_to_item(record)))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match res {
            Ok(_) => Ok((record.clone(), true)),
            Err(e) if is_condition_failed(&e) => {
                // The failed write returns the stored item; read it back where an emulator does not.
                let returned = match e.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                };
                let item = match returned {
                    Some(item) if !item.is_empty() => item,
                    _ => self
                        .get(company_pk(&record.company_id), &candidate_sk(&record.candidate_id))
                        .await?
                        .ok_or_else(|| corrupt("a candidate that blocked a create is gone"))?,
                };
                Ok((candidate_from_item(&item)?, false))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn get_candidate(
        &self,
        company: &CompanyId,
        id: &CandidateId,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        self.get(company_pk(company), &candidate_sk(id)).await?.as_ref().map(candidate_from_item).transpose()
    }

    async fn list_candidates(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<CandidateRecord>, StoreError> {
        let (items, next_cursor) = self.list_page(company, format!("CANDIDATES#{company}"), limit, cursor).await?;
        Ok(Page { items: items.iter().map(candidate_from_item).collect::<Result<_, _>>()?, next_cursor })
    }

    async fn claim_invitation(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(company_pk(company)))
            .key("sk", s(candidate_sk(id)))
            .update_expression("SET inviteStatus = :sending, leaseUntil = :lease")
            .condition_expression(
                "attribute_exists(pk) AND (inviteStatus = :pending OR (inviteStatus = :sending AND leaseUntil < :now))",
            )
            .expression_attribute_values(":sending", s(code(&InviteEmailStatus::Sending)))
            .expression_attribute_values(":pending", s(code(&InviteEmailStatus::Pending)))
            .expression_attribute_values(":lease", s(time(&lease_until)))
            .expression_attribute_values(":now", s(time(&now)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn mark_invitation_sent(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        message_id: &str,
        sent_at: Timestamp,
    ) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(company_pk(company)))
            .key("sk", s(candidate_sk(id)))
            .update_expression("SET inviteStatus = :sent, inviteMessageId = :mid, inviteSentAt = :at REMOVE leaseUntil")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":sent", s(code(&InviteEmailStatus::Sent)))
            .expression_attribute_values(":mid", s(message_id))
            .expression_attribute_values(":at", s(time(&sent_at)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Corrupt(format!("candidate {id} does not exist"))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn release_invitation(&self, company: &CompanyId, id: &CandidateId) -> Result<(), StoreError> {
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(company_pk(company)))
            .key("sk", s(candidate_sk(id)))
            .update_expression("SET inviteStatus = :pending REMOVE leaseUntil")
            // Only a live claim is given back: a sent invitation never returns to pending.
            .condition_expression("inviteStatus = :sending")
            .expression_attribute_values(":sending", s(code(&InviteEmailStatus::Sending)))
            .expression_attribute_values(":pending", s(code(&InviteEmailStatus::Pending)))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn put_invite_token(&self, token: &InviteToken) -> Result<(), StoreError> {
        self.put(invite_token_to_item(token)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_only_fits_its_own_listing() {
        let key = Item::from([
            ("pk".into(), s("COMPANY#acme")),
            ("sk".into(), s("EVENT#evt_1")),
            ("gsi1pk".into(), s("EVENTS#acme")),
            ("gsi1sk".into(), s("2026-12-04T10:00:00.000000Z#evt_1")),
        ]);
        let c = encode_cursor(&key);
        assert_eq!(decode_cursor(&c, "COMPANY#acme", "EVENTS#acme").unwrap(), key);
        assert!(matches!(decode_cursor(&c, "COMPANY#other", "EVENTS#other"), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode_cursor(&c, "COMPANY#acme", "CANDIDATES#acme"), Err(StoreError::InvalidCursor)));
        for bad in ["", "!!!", "bm90IGpzb24", "e30"] {
            assert!(
                matches!(decode_cursor(bad, "COMPANY#acme", "EVENTS#acme"), Err(StoreError::InvalidCursor)),
                "{bad}"
            );
        }
    }

    #[test]
    fn stored_times_sort_as_the_times_do() {
        let a = chrono::DateTime::parse_from_rfc3339("2026-12-04T10:00:00Z").unwrap().with_timezone(&chrono::Utc);
        let b = a + chrono::Duration::microseconds(1);
        let c = a + chrono::Duration::hours(30);
        assert!(time(&a) < time(&b) && time(&b) < time(&c));
        assert_eq!(time(&a).len(), time(&c).len());
    }

    #[test]
    fn settings_survive_the_item_round_trip() {
        let mut v = IntegrationSettings::unconfigured(CompanyId::parse("acme").unwrap());
        assert_eq!(settings_from_item(&settings_to_item(&v)).unwrap(), v);
        v.approver_role = Some(ApproverRole::HiringTeam);
        v.backup_approver_email = Some(EmailAddress::parse("ops@acme.example").unwrap());
        v.updated_at = Some(chrono::Utc::now());
        v.revision = 7;
        let round = settings_from_item(&settings_to_item(&v)).unwrap();
        assert_eq!(round.approver_role, v.approver_role);
        assert_eq!(round.revision, 7);
        assert_eq!(round.backup_approver_email, v.backup_approver_email);
    }
}
