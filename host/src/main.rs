//! The `vaultaris` command.

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use vaultaris::config::Config;

/// Vaultaris identity and access management server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default). Configuration comes from the environment.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::from_env()?;
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    if config.log_json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => vaultaris::server::serve(config).await,
        Command::Migrate => {
            let store = vaultaris::server::open_store(&config).await?;
            tracing::info!(database = store.backend(), "migrations applied");
            store.close().await;
            Ok(())
        }
    }
}
