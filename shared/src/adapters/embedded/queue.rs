//! [`EmbeddedQueue`]: the event queue with SQS's delivery semantics, on redb.
//!
//! A received message becomes invisible for the visibility timeout and its receive count
//! goes up; deleting it (with its latest receipt handle) removes it; otherwise it is received
//! again once visible. A message already received `max_receives` times is moved to the
//! dead-letter store instead of being received again (SQS's redrive policy). Messages are
//! stored in the database they were built `on`, so accepted events survive a restart, and an
//! in-flight message whose visibility lapsed while the process was down is received again.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::random_hex;
use super::store::{EmbeddedStore, Table, decode, get_json, put_json, unavailable, write_txn};
use crate::domain::{CompanyId, EventId, Timestamp, WebhookId};
use crate::ports::{Clock, EventQueue, QueueError, QueuedEvent, Redelivery, StoreError};

/// SQS's default visibility timeout.
pub const DEFAULT_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(30);
/// The redrive policy's maxReceiveCount the AWS deployment uses.
pub const DEFAULT_MAX_RECEIVES: u32 = 5;

const MESSAGES: Table = Table::new("queue_messages");
const DEAD_LETTERS: Table = Table::new("queue_dead_letters");
const META: Table = Table::new("queue_meta");
const NEXT_SEQUENCE: &str = "nextSequence";

pub(super) fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(MESSAGES).map_err(unavailable)?;
    txn.open_table(DEAD_LETTERS).map_err(unavailable)?;
    txn.open_table(META).map_err(unavailable)?;
    Ok(())
}

/// A message handed out by [`EmbeddedQueue::receive`].
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedMessage {
    pub message_id: String,
    /// Valid until the message is received again; pass it to `delete` or `redeliver_after`.
    pub receipt_handle: String,
    /// How many times the message has been received, this time included (SQS's
    /// `ApproximateReceiveCount`).
    pub receive_count: u32,
    pub event: QueuedEvent,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredEvent {
    event_id: EventId,
    company_id: CompanyId,
    webhook_id: WebhookId,
    received_at: Timestamp,
    body: String,
}

impl From<&QueuedEvent> for StoredEvent {
    fn from(e: &QueuedEvent) -> Self {
        Self {
            event_id: e.event_id.clone(),
            company_id: e.company_id.clone(),
            webhook_id: e.webhook_id.clone(),
            received_at: e.received_at,
            body: e.body.clone(),
        }
    }
}

impl From<StoredEvent> for QueuedEvent {
    fn from(e: StoredEvent) -> Self {
        Self {
            event_id: e.event_id,
            company_id: e.company_id,
            webhook_id: e.webhook_id,
            received_at: e.received_at,
            body: e.body,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredMessage {
    event: StoredEvent,
    receive_count: u32,
    visible_at: Timestamp,
    /// The receipt handle of the latest receive; older handles no longer act on the message.
    receipt: Option<String>,
}

/// An SQS-like queue of accepted events. Cheap to clone; clones share the queue.
#[derive(Clone)]
pub struct EmbeddedQueue {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    visibility_timeout: Duration,
    max_receives: u32,
}

impl std::fmt::Debug for EmbeddedQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedQueue")
            .field("visibility_timeout", &self.visibility_timeout)
            .field("max_receives", &self.max_receives)
            .finish()
    }
}

fn queue_error(e: StoreError) -> QueueError {
    QueueError::Unavailable(Box::new(e))
}

/// The message id inside a receipt handle (`{messageId}#{random}`).
fn message_id_of(receipt_handle: &str) -> &str {
    receipt_handle.split_once('#').map_or(receipt_handle, |(id, _)| id)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl EmbeddedQueue {
    /// A queue of its own, in memory.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Self {
        Self::on(&EmbeddedStore::in_memory(), clock)
    }

    /// A queue kept in `store`'s database (on disk when the store is).
    pub fn on(store: &EmbeddedStore, clock: Arc<dyn Clock>) -> Self {
        Self {
            db: store.database(),
            clock,
            visibility_timeout: DEFAULT_VISIBILITY_TIMEOUT,
            max_receives: DEFAULT_MAX_RECEIVES,
        }
    }

    /// Sets the visibility timeout and the number of receives before a message is dead-lettered.
    pub fn with_limits(mut self, visibility_timeout: Duration, max_receives: u32) -> Self {
        self.visibility_timeout = visibility_timeout;
        self.max_receives = max_receives.max(1);
        self
    }

    /// Receives up to `max` visible messages, oldest first, making each invisible for the
    /// visibility timeout. Visible messages already received `max_receives` times go to the
    /// dead-letter store instead.
    pub async fn receive(&self, max: usize) -> Result<Vec<ReceivedMessage>, QueueError> {
        let now = self.clock.now();
        let invisible_until = now + to_chrono(self.visibility_timeout);
        write_txn(&self.db, |txn| {
            let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            let mut visible = Vec::new();
            for row in messages.iter().map_err(unavailable)? {
                let (k, v) = row.map_err(unavailable)?;
                let m: StoredMessage = decode(v.value())?;
                if m.visible_at <= now {
                    visible.push((k.value().to_owned(), m));
                }
            }
            let mut dead = txn.open_table(DEAD_LETTERS).map_err(unavailable)?;
            let mut out = Vec::new();
            for (id, mut m) in visible {
                if m.receive_count >= self.max_receives {
                    messages.remove(id.as_str()).map_err(unavailable)?;
                    put_json(&mut dead, &id, &m.event)?;
                    continue;
                }
                if out.len() == max {
                    // Dead-lettering continues past `max`, so that `len` only counts live messages.
                    continue;
                }
                let receipt = format!("{id}#{}", random_hex(8));
                m.receive_count += 1;
                m.visible_at = invisible_until;
                m.receipt = Some(receipt.clone());
                put_json(&mut messages, &id, &m)?;
                out.push(ReceivedMessage {
                    message_id: id,
                    receipt_handle: receipt,
                    receive_count: m.receive_count,
                    event: m.event.into(),
                });
            }
            Ok(out)
        })
        .map_err(queue_error)
    }

    /// Deletes the message received with `receipt_handle`. Like SQS, a stale handle (the
    /// message was received again since) or an unknown one succeeds without deleting anything.
    pub async fn delete(&self, receipt_handle: &str) -> Result<(), QueueError> {
        self.with_current_receipt(receipt_handle, |messages, id, _| {
            messages.remove(id).map_err(unavailable)?;
            Ok(())
        })
    }

    /// Runs `f` on the message when `receipt_handle` is its latest one; a no-op otherwise.
    fn with_current_receipt(
        &self,
        receipt_handle: &str,
        f: impl FnOnce(&mut redb::Table<'_, &'static str, &'static str>, &str, StoredMessage) -> Result<(), StoreError>,
    ) -> Result<(), QueueError> {
        let id = message_id_of(receipt_handle);
        write_txn(&self.db, |txn| {
            let mut messages = txn.open_table(MESSAGES).map_err(unavailable)?;
            match get_json::<StoredMessage>(&messages, id)? {
                Some(m) if m.receipt.as_deref() == Some(receipt_handle) => f(&mut messages, id, m),
                _ => Ok(()),
            }
        })
        .map_err(queue_error)
    }

    /// The events that were received `max_receives` times without being deleted.
    pub fn dead_letters(&self) -> Vec<QueuedEvent> {
        self.scan(DEAD_LETTERS, |v| decode::<StoredEvent>(v).map(QueuedEvent::from)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read the embedded queue's dead letters");
            Vec::new()
        })
    }

    /// The messages in the queue, visible or in flight (not the dead letters).
    pub fn len(&self) -> usize {
        let count = self.db.begin_read().map_err(unavailable).and_then(|txn| {
            let t = txn.open_table(MESSAGES).map_err(unavailable)?;
            t.len().map_err(unavailable)
        });
        match count {
            Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
            Err(e) => {
                tracing::error!(error = %e, "could not count the embedded queue's messages");
                0
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How long until the next message is visible (zero when one is visible now); `None`
    /// when the queue is empty.
    pub fn next_visible_in(&self) -> Option<Duration> {
        let now = self.clock.now();
        let times = self.scan(MESSAGES, |v| decode::<StoredMessage>(v).map(|m| m.visible_at)).unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not read the embedded queue's messages");
            Vec::new()
        });
        times.into_iter().min().map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
    }

    fn scan<T>(&self, table: Table, f: impl Fn(&str) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
        let txn = self.db.begin_read().map_err(unavailable)?;
        let t = txn.open_table(table).map_err(unavailable)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(unavailable)? {
            let (_, v) = row.map_err(unavailable)?;
            out.push(f(v.value())?);
        }
        Ok(out)
    }
}

#[async_trait]
impl EventQueue for EmbeddedQueue {
    async fn enqueue(&self, event: &QueuedEvent) -> Result<(), QueueError> {
        let message =
            StoredMessage { event: event.into(), receive_count: 0, visible_at: self.clock.now(), receipt: None };
        write_txn(&self.db, |txn| {
            // Ids start with a persisted sequence number, so receive hands out the oldest first.
            let mut meta = txn.open_table(META).map_err(unavailable)?;
            let seq: u64 = get_json(&meta, NEXT_SEQUENCE)?.unwrap_or(0);
            put_json(&mut meta, NEXT_SEQUENCE, &(seq + 1))?;
            let id = format!("{seq:020}-{}", random_hex(8));
            put_json(&mut txn.open_table(MESSAGES).map_err(unavailable)?, &id, &message)
        })
        .map_err(queue_error)
    }
}

#[async_trait]
impl Redelivery for EmbeddedQueue {
    /// Makes the message visible again `delay` from now (SQS's ChangeMessageVisibility). A
    /// stale or unknown receipt handle is a no-op: the message was already deleted or received
    /// again, and whoever holds the newer handle decides.
    async fn redeliver_after(&self, receipt_handle: &str, delay: Duration) -> Result<(), QueueError> {
        let visible_at = self.clock.now() + to_chrono(delay);
        self.with_current_receipt(receipt_handle, |messages, id, mut m| {
            m.visible_at = visible_at;
            put_json(messages, id, &m)
        })
    }
}
