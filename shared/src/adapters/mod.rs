//! Port implementations: `<Tech><Port>`.

pub mod ashby_http;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "embedded")]
pub mod embedded;
pub mod mime;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;
#[cfg(feature = "ses")]
pub mod ses;
#[cfg(feature = "sqs")]
pub mod sqs;
