//! [`EmbeddedStore`]: the storage ports on redb, in memory or in one file.
//!
//! Each record kind has its own table keyed by strings (`{companyId}/{id}` for per-company
//! records; ids never contain `/`), with the domain record as JSON. Newest-first listings use
//! an index table keyed `{companyId}/{time}#{id}`, read backwards; a cursor is the base64url
//! of the last index key returned. Every conditional write runs inside one write transaction
//! (redb serialises writers), so checking and writing is atomic.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use redb::{Database, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::sortable_time;
use crate::domain::*;
use crate::ports::{BoxError, CandidateStore, EventLog, SettingsStore, StoreError, WebhookStore};

pub(super) type Table = TableDefinition<'static, &'static str, &'static str>;

const SETTINGS: Table = TableDefinition::new("settings");
const POLICIES: Table = TableDefinition::new("policies");
const STAFF: Table = TableDefinition::new("staff");
const WEBHOOKS: Table = TableDefinition::new("webhooks");
const EVENTS: Table = TableDefinition::new("events");
const EVENTS_BY_TIME: Table = TableDefinition::new("events_by_time");
const CANDIDATES: Table = TableDefinition::new("candidates");
const CANDIDATES_BY_TIME: Table = TableDefinition::new("candidates_by_time");
const INVITE_TOKENS: Table = TableDefinition::new("invite_tokens");

const ALL_TABLES: [Table; 9] =
    [SETTINGS, POLICIES, STAFF, WEBHOOKS, EVENTS, EVENTS_BY_TIME, CANDIDATES, CANDIDATES_BY_TIME, INVITE_TOKENS];

/// Settings, webhooks, the event log and candidates in one redb database. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EmbeddedStore")
    }
}

impl EmbeddedStore {
    /// A fresh store that lives as long as its clones.
    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory redb database can always be created");
        Self::init(db).expect("an in-memory redb database can always be initialised")
    }

    /// Opens (or creates) the database file at `path`, creating its directory if needed.
    /// A file can be open once per process: clone the store to share it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, BoxError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let db = Database::create(path)?;
        Ok(Self::init(db)?)
    }

    fn init(db: Database) -> Result<Self, StoreError> {
        let store = Self { db: Arc::new(db) };
        // Creating every table up front lets read transactions open them unconditionally.
        store.write(|txn| {
            for table in ALL_TABLES {
                txn.open_table(table).map_err(unavailable)?;
            }
            super::queue::create_tables(txn)
        })?;
        Ok(store)
    }

    pub(super) fn database(&self) -> Arc<Database> {
        Arc::clone(&self.db)
    }

    fn read<T>(&self, f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        f(&txn)
    }

    fn write<T>(&self, f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>) -> Result<T, StoreError> {
        write_txn(&self.db, f)
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Result<Option<T>, StoreError> {
        self.read(|txn| get_json(&txn.open_table(table).map_err(unavailable)?, key))
    }

    fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) -> Result<(), StoreError> {
        self.write(|txn| put_json(&mut txn.open_table(table).map_err(unavailable)?, key, value))
    }

    fn list_prefix<T: DeserializeOwned>(&self, table: Table, company: &CompanyId) -> Result<Vec<T>, StoreError> {
        let (start, end) = company_range(company);
        self.read(|txn| {
            let t = txn.open_table(table).map_err(unavailable)?;
            let mut out = Vec::new();
            for row in t.range(start.as_str()..end.as_str()).map_err(unavailable)? {
                let (_, v) = row.map_err(unavailable)?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
    }

    /// One newest-first page of `items`, through its time index.
    fn page<T: DeserializeOwned>(
        &self,
        listing: &str,
        index: Table,
        items: Table,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<T>, StoreError> {
        let (start, company_end) = company_range(company);
        let end = match cursor {
            None => company_end,
            Some(c) => decode_cursor(c, listing, &start)?,
        };
        let limit = limit.max(1);
        self.read(|txn| {
            let idx = txn.open_table(index).map_err(unavailable)?;
            let tbl = txn.open_table(items).map_err(unavailable)?;
            let mut out = Vec::new();
            let mut last_key = None;
            let mut more = false;
            for row in idx.range(start.as_str()..end.as_str()).map_err(unavailable)?.rev() {
                let (k, v) = row.map_err(unavailable)?;
                if out.len() == limit {
                    more = true;
                    break;
                }
                let item_key = format!("{start}{}", v.value());
                let item = get_json(&tbl, &item_key)?
                    .ok_or_else(|| StoreError::Corrupt(format!("index entry without its record: {item_key}")))?;
                out.push(item);
                last_key = Some(k.value().to_owned());
            }
            let next_cursor = if more { last_key.map(|k| encode_cursor(listing, &k)) } else { None };
            Ok(Page { items: out, next_cursor })
        })
    }

    /// Reads, changes and writes back one candidate in one transaction. `change` returns
    /// whether to write; the result is `None` when there is no such candidate.
    fn update_candidate<R>(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        change: impl FnOnce(&mut CandidateRecord) -> (bool, R),
    ) -> Result<Option<R>, StoreError> {
        let key = company_key(company, id.as_str());
        self.write(|txn| {
            let mut t = txn.open_table(CANDIDATES).map_err(unavailable)?;
            let Some(mut record) = get_json::<CandidateRecord>(&t, &key)? else {
                return Ok(None);
            };
            let (write, result) = change(&mut record);
            if write {
                put_json(&mut t, &key, &record)?;
            }
            Ok(Some(result))
        })
    }
}

/// Runs `f` in one write transaction: committed when it returns `Ok`, aborted otherwise.
pub(super) fn write_txn<T>(
    db: &Database,
    f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let txn = db.begin_write().map_err(unavailable)?;
    match f(&txn) {
        Ok(out) => {
            txn.commit().map_err(unavailable)?;
            Ok(out)
        }
        Err(e) => {
            txn.abort().map_err(unavailable)?;
            Err(e)
        }
    }
}

pub(super) fn unavailable(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(Box::new(RedbError(e.into().to_string())))
}

/// A redb failure, by its message: some redb errors hold a transaction, which cannot cross threads.
#[derive(Debug, thiserror::Error)]
#[error("redb: {0}")]
pub(super) struct RedbError(pub(super) String);

pub(super) fn decode<T: DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn get_json<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match table.get(key).map_err(unavailable)? {
        Some(v) => decode(v.value()).map(Some),
        None => Ok(None),
    }
}

pub(super) fn put_json<T: Serialize>(
    table: &mut redb::Table<'_, &'static str, &'static str>,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    table.insert(key, json.as_str()).map_err(unavailable)?;
    Ok(())
}

fn company_key(company: &CompanyId, id: &str) -> String {
    format!("{company}/{id}")
}

/// The keys of one company's records: from `{company}/` up to `{company}0` (`0` follows `/`).
fn company_range(company: &CompanyId) -> (String, String) {
    (format!("{company}/"), format!("{company}0"))
}

fn time_key(company: &CompanyId, at: &Timestamp, id: &str) -> String {
    format!("{company}/{}#{id}", sortable_time(at))
}

/// A cursor names its listing and the last index key returned: `{listing}|{key}`, base64url.
fn encode_cursor(listing: &str, key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{listing}|{key}"))
}

fn decode_cursor(cursor: &str, listing: &str, prefix: &str) -> Result<String, StoreError> {
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    // A cursor of another listing or company (or a made-up one) is refused, not followed.
    match text.split_once('|') {
        Some((l, key)) if l == listing && key.starts_with(prefix) && key.contains('#') => Ok(key.to_owned()),
        _ => Err(StoreError::InvalidCursor),
    }
}

#[async_trait]
impl SettingsStore for EmbeddedStore {
    async fn get_settings(&self, company: &CompanyId) -> Result<Option<IntegrationSettings>, StoreError> {
        self.get(SETTINGS, company.as_str())
    }

    async fn save_settings(&self, settings: &IntegrationSettings) -> Result<(), StoreError> {
        let key = settings.company_id.as_str();
        self.write(|txn| {
            let mut t = txn.open_table(SETTINGS).map_err(unavailable)?;
            let stored = get_json::<IntegrationSettings>(&t, key)?.map(|s| s.revision).unwrap_or(0);
            if settings.revision == 0 || stored != settings.revision - 1 {
                return Err(StoreError::Conflict);
            }
            put_json(&mut t, key, settings)
        })
    }

    async fn get_policy(&self, company: &CompanyId, policy: &PolicyId) -> Result<Option<Policy>, StoreError> {
        self.get(POLICIES, &company_key(company, policy.as_str()))
    }

    async fn put_policy(&self, policy: &Policy) -> Result<(), StoreError> {
        self.put(POLICIES, &company_key(&policy.company_id, policy.policy_id.as_str()), policy)
    }

    async fn list_policies(&self, company: &CompanyId) -> Result<Vec<Policy>, StoreError> {
        self.list_prefix(POLICIES, company)
    }

    async fn get_staff(&self, company: &CompanyId, email: &EmailAddress) -> Result<Option<StaffMember>, StoreError> {
        self.get(STAFF, &company_key(company, email.as_str()))
    }

    async fn put_staff(&self, member: &StaffMember) -> Result<(), StoreError> {
        self.put(STAFF, &company_key(&member.company_id, member.email.as_str()), member)
    }

    async fn list_staff(&self, company: &CompanyId) -> Result<Vec<StaffMember>, StoreError> {
        self.list_prefix(STAFF, company)
    }
}

#[async_trait]
impl WebhookStore for EmbeddedStore {
    async fn get_webhook(&self, id: &WebhookId) -> Result<Option<WebhookCredential>, StoreError> {
        self.get(WEBHOOKS, id.as_str())
    }

    async fn put_webhook(&self, credential: &WebhookCredential) -> Result<(), StoreError> {
        self.put(WEBHOOKS, credential.webhook_id.as_str(), credential)
    }
}

/// Writes an event entry and its time index entry, replacing an index entry at an old time.
fn write_event(
    txn: &WriteTransaction,
    entry: &EventLogEntry,
    previous: Option<&EventLogEntry>,
) -> Result<(), StoreError> {
    let mut idx = txn.open_table(EVENTS_BY_TIME).map_err(unavailable)?;
    if let Some(old) = previous {
        idx.remove(time_key(&old.company_id, &old.received_at, old.event_id.as_str()).as_str()).map_err(unavailable)?;
    }
    let tk = time_key(&entry.company_id, &entry.received_at, entry.event_id.as_str());
    idx.insert(tk.as_str(), entry.event_id.as_str()).map_err(unavailable)?;
    let mut t = txn.open_table(EVENTS).map_err(unavailable)?;
    put_json(&mut t, &company_key(&entry.company_id, entry.event_id.as_str()), entry)
}

fn read_event(
    txn: &WriteTransaction,
    company: &CompanyId,
    event: &EventId,
) -> Result<Option<EventLogEntry>, StoreError> {
    get_json(&txn.open_table(EVENTS).map_err(unavailable)?, &company_key(company, event.as_str()))
}

#[async_trait]
impl EventLog for EmbeddedStore {
    async fn insert_if_absent(&self, entry: &EventLogEntry) -> Result<bool, StoreError> {
        self.write(|txn| {
            if read_event(txn, &entry.company_id, &entry.event_id)?.is_some() {
                return Ok(false);
            }
            write_event(txn, entry, None)?;
            Ok(true)
        })
    }

    async fn upsert(&self, entry: &EventLogEntry) -> Result<(), StoreError> {
        self.write(|txn| {
            let previous = read_event(txn, &entry.company_id, &entry.event_id)?;
            write_event(txn, entry, previous.as_ref())
        })
    }

    async fn get_event(&self, company: &CompanyId, event: &EventId) -> Result<Option<EventLogEntry>, StoreError> {
        self.get(EVENTS, &company_key(company, event.as_str()))
    }

    async fn set_outcome(
        &self,
        company: &CompanyId,
        event: &EventId,
        update: &OutcomeUpdate,
    ) -> Result<(), StoreError> {
        self.write(|txn| {
            let Some(mut entry) = read_event(txn, company, event)? else {
                return Ok(());
            };
            entry.outcome = update.outcome;
            entry.reason = update.reason;
            entry.candidate_id = update.candidate_id.clone();
            entry.updated_at = update.at;
            let mut t = txn.open_table(EVENTS).map_err(unavailable)?;
            put_json(&mut t, &company_key(company, event.as_str()), &entry)
        })
    }

    async fn list_events(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<EventLogEntry>, StoreError> {
        self.page("events", EVENTS_BY_TIME, EVENTS, company, limit, cursor)
    }
}

#[async_trait]
impl CandidateStore for EmbeddedStore {
    async fn create_if_absent(&self, record: &CandidateRecord) -> Result<(CandidateRecord, bool), StoreError> {
        let key = company_key(&record.company_id, record.candidate_id.as_str());
        self.write(|txn| {
            let mut t = txn.open_table(CANDIDATES).map_err(unavailable)?;
            if let Some(existing) = get_json::<CandidateRecord>(&t, &key)? {
                return Ok((existing, false));
            }
            put_json(&mut t, &key, record)?;
            let mut idx = txn.open_table(CANDIDATES_BY_TIME).map_err(unavailable)?;
            let tk = time_key(&record.company_id, &record.invited_at, record.candidate_id.as_str());
            idx.insert(tk.as_str(), record.candidate_id.as_str()).map_err(unavailable)?;
            Ok((record.clone(), true))
        })
    }

    async fn get_candidate(
        &self,
        company: &CompanyId,
        id: &CandidateId,
    ) -> Result<Option<CandidateRecord>, StoreError> {
        self.get(CANDIDATES, &company_key(company, id.as_str()))
    }

    async fn list_candidates(
        &self,
        company: &CompanyId,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<CandidateRecord>, StoreError> {
        self.page("candidates", CANDIDATES_BY_TIME, CANDIDATES, company, limit, cursor)
    }

    async fn claim_invitation(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool, StoreError> {
        let claimed = self.update_candidate(company, id, |r| {
            let free = match r.invite_email.status {
                InviteEmailStatus::Pending => true,
                InviteEmailStatus::Sending => r.invite_email.lease_until.is_none_or(|l| l < now),
                InviteEmailStatus::Sent => false,
            };
            if free {
                r.invite_email.status = InviteEmailStatus::Sending;
                r.invite_email.lease_until = Some(lease_until);
            }
            (free, free)
        })?;
        Ok(claimed.unwrap_or(false))
    }

    async fn mark_invitation_sent(
        &self,
        company: &CompanyId,
        id: &CandidateId,
        message_id: &str,
        sent_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.update_candidate(company, id, |r| {
            r.invite_email.status = InviteEmailStatus::Sent;
            r.invite_email.message_id = Some(message_id.to_owned());
            r.invite_email.sent_at = Some(sent_at);
            r.invite_email.lease_until = None;
            (true, ())
        })?;
        Ok(())
    }

    async fn release_invitation(&self, company: &CompanyId, id: &CandidateId) -> Result<(), StoreError> {
        self.update_candidate(company, id, |r| {
            // Only a claim is given back: a sent invitation stays sent.
            let sending = r.invite_email.status == InviteEmailStatus::Sending;
            if sending {
                r.invite_email.status = InviteEmailStatus::Pending;
                r.invite_email.lease_until = None;
            }
            (sending, ())
        })?;
        Ok(())
    }

    async fn put_invite_token(&self, token: &InviteToken) -> Result<(), StoreError> {
        self.put(INVITE_TOKENS, &token.token_hash, token)
    }
}
