//! Structured logging, set up once per process.

/// JSON lines for Lambda (CloudWatch), human-readable text for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Installs the global subscriber; `RUST_LOG` filters (default `info`). Safe to call twice.
pub fn init(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        // Lambda adds its own timestamp; the request id comes from the runtime's span.
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).without_time().try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
