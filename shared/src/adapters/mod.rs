//! Port implementations: `<Tech><Port>`.

pub mod ashby_http;
#[cfg(feature = "embedded")]
pub mod embedded;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "secretsmanager")]
pub mod secretsmanager;
#[cfg(feature = "ses")]
pub mod ses;
pub mod mime;
