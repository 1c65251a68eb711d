//! `reimbi-local`: the whole integration on one machine (contract section 5).
//!
//! `serve` hosts the same handler code the three Lambdas run: the webhook and settings
//! routers on one port, and the processor fed from a queue with SQS semantics. By default
//! everything is embedded under `--data-dir`; `--aws` swaps in the real AWS adapters.

mod app;
mod demo;
mod token;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "reimbi-local", version, about = "Run the Reimbi ⇄ Ashby integration on one machine")]
struct Cli {
    /// Log format: human-readable text, or JSON lines.
    #[arg(long, value_enum, default_value_t = LogFormatArg::Text, global = true)]
    log_format: LogFormatArg,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the webhook and admin routes and run the processor.
    Serve(ServeArgs),
    /// Print a bearer token the local server accepts.
    Token {
        #[arg(long)]
        company: String,
        #[arg(long, default_value = "admin")]
        role: String,
        #[arg(long, default_value = app::DEFAULT_DATA_DIR)]
        data_dir: PathBuf,
    },
    /// Run the whole story once, end to end, with a simulated Ashby, and print what happened.
    Demo,
    /// Run the Ashby simulator on its own, seeded with demo data, for clicking through.
    AshbySim {
        #[arg(long, default_value = "127.0.0.1:3001")]
        listen: SocketAddr,
        /// The API key the simulator accepts.
        #[arg(long, default_value = "demo-ashby-key")]
        api_key: String,
    },
}

#[derive(clap::Args, Clone)]
pub struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    #[arg(long, default_value = app::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Ashby's API base URL (default: ASHBY_API_URL, else https://api.ashbyhq.com).
    #[arg(long)]
    pub ashby_api_url: Option<String>,
    /// Use the real AWS adapters (configured by the environment: TABLE_NAME, QUEUE_URL, …).
    #[arg(long)]
    pub aws: bool,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let format = match cli.log_format {
        LogFormatArg::Text => reimbi_shared::telemetry::LogFormat::Text,
        LogFormatArg::Json => reimbi_shared::telemetry::LogFormat::Json,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime");
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => {
                reimbi_shared::telemetry::init(format);
                app::serve(args).await
            }
            Command::Token { company, role, data_dir } => token::print_token(&data_dir, &company, &role),
            Command::Demo => demo::run(format).await,
            Command::AshbySim { listen, api_key } => {
                reimbi_shared::telemetry::init(format);
                app::run_ashby_sim(listen, &api_key).await
            }
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("reimbi-local: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
