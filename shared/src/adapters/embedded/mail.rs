//! Mailers without SES: [`OutboxMailer`] writes each email as an `.eml` file (the local
//! runner's outbox); [`MemoryMailer`] keeps them in memory for tests.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::{random_hex, write_atomically};
use crate::adapters::mime;
use crate::ports::{MailError, Mailer, OutgoingEmail};

/// Writes each email to `<messageId>.eml` in a directory (RFC 5322, both parts).
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
}

impl OutboxMailer {
    /// Writes into `dir`, created now if missing (so a runner fails at start, not at its first email).
    pub fn new(dir: impl AsRef<Path>) -> std::io::Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    /// Returns the message id, `<32 hex digits>@reimbi.local`; the file is `<that id>.eml`.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let message_id = format!("{}@reimbi.local", random_hex(16));
        // The Date header is when the file is written, as SES stamps when it sends.
        let raw = mime::render(email, &message_id, &chrono::Utc::now().to_rfc2822());
        let unavailable = |e: std::io::Error| MailError::Unavailable(Box::new(e));
        write_atomically(&self.dir.join(format!("{message_id}.eml")), raw.as_bytes(), 0o644).map_err(unavailable)?;
        Ok(message_id)
    }
}

/// A failure [`MemoryMailer`] was told to simulate.
#[derive(Debug, thiserror::Error)]
#[error("simulated mail service outage")]
pub struct SimulatedOutage;

/// Keeps sent emails in memory; can be told to fail the next sends. Clones share the outbox.
#[derive(Debug, Clone, Default)]
pub struct MemoryMailer {
    sent: Arc<Mutex<Vec<(String, OutgoingEmail)>>>,
    failures: Arc<AtomicUsize>,
}

impl MemoryMailer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The emails sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutgoingEmail> {
        self.sent.lock().unwrap().iter().map(|(_, e)| e.clone()).collect()
    }

    /// The emails sent so far with the message id each send returned, oldest first.
    pub fn sent_messages(&self) -> Vec<(String, OutgoingEmail)> {
        self.sent.lock().unwrap().clone()
    }

    /// The next `n` sends fail with [`MailError::Unavailable`] and send nothing.
    pub fn fail_next(&self, n: usize) {
        self.failures.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    /// Returns `mem-<n>@reimbi.local`, `n` counting sent emails from 1.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let failing = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failing {
            return Err(MailError::Unavailable(Box::new(SimulatedOutage)));
        }
        let mut sent = self.sent.lock().unwrap();
        let id = format!("mem-{}@reimbi.local", sent.len() + 1);
        sent.push((id.clone(), email.clone()));
        Ok(id)
    }
}
