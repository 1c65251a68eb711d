//! Embedded adapters: every port without AWS, for handler tests (in memory) and for
//! `reimbi-local` (on disk under its data dir, surviving a restart).
//!
//! - [`EmbeddedStore`]: settings, webhooks, event log and candidates in one redb database.
//! - [`EmbeddedQueue`]: an SQS-like queue (visibility timeout, receive count, dead letters),
//!   persisted in the same database when built with [`EmbeddedQueue::on`].
//! - [`EmbeddedSecretStore`]: secrets in memory, or one `0600` file per secret.
//! - [`OutboxMailer`] writes `.eml` files; [`MemoryMailer`] keeps sent emails for tests.
//!
//! redb calls are blocking, and these adapters call them directly from async fns: a
//! transaction on a local file or in memory takes microseconds to a few milliseconds (one
//! fsync per commit), which is less than a `spawn_blocking` hop costs in complexity, and these
//! adapters serve tests and a single-user local runner, never the Lambda functions. No
//! transaction is held across an `.await`, so a writer waiting for another waits briefly.

mod mail;
mod queue;
mod secrets;
mod store;

pub use mail::{MemoryMailer, OutboxMailer};
pub use queue::{DEFAULT_MAX_RECEIVES, DEFAULT_VISIBILITY_TIMEOUT, EmbeddedQueue, ReceivedMessage};
pub use secrets::EmbeddedSecretStore;
pub use store::EmbeddedStore;

/// A random lowercase hex string of `bytes` random bytes.
fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    hex::encode(buf)
}

/// A timestamp as text that sorts like the time (RFC 3339, UTC, microseconds, fixed width).
fn sortable_time(t: &crate::domain::Timestamp) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so that a reader never sees a half-written file. The file gets `mode` (unix permissions).
fn write_atomically(path: &std::path::Path, contents: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", random_hex(6)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
