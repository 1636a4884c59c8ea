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
    /// Tools for plugin authors and operators.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Call one function of a plugin with a JSON input under production
    /// limits; print output, fuel used, peak memory and time as JSON.
    Run {
        /// The plugin's manifest.json.
        #[arg(long)]
        manifest: std::path::PathBuf,
        /// The component (.wasm).
        #[arg(long)]
        component: std::path::PathBuf,
        /// The category whose interface holds the function (e.g. jwt-customizer).
        #[arg(long)]
        category: String,
        /// The function (default: the category's main function).
        #[arg(long)]
        function: Option<String>,
        /// The request argument as JSON (or @file).
        #[arg(long)]
        input: String,
        /// The plugin configuration as JSON (or @file).
        #[arg(long, default_value = "{}")]
        config: String,
        /// Warm calls after the first (their mean time is reported).
        #[arg(long, default_value_t = 0)]
        repeat: u32,
    },
    /// Write an installable plugin folder: manifest.json (with the
    /// component's sha256) and plugin.wasm, for PLUGINS_DIR or upload.
    Package {
        /// The source manifest.json.
        #[arg(long)]
        manifest: std::path::PathBuf,
        /// The component (.wasm).
        #[arg(long)]
        component: std::path::PathBuf,
        /// The output folder (created).
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

fn json_arg(s: &str) -> anyhow::Result<serde_json::Value> {
    let text = match s.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)?,
        None => s.to_string(),
    };
    Ok(serde_json::from_str(&text)?)
}

fn default_function(category: vaultaris::plugins::Category) -> &'static str {
    use vaultaris::plugins::Category::*;
    match category {
        JwtCustomizer => "customize",
        PolicyEngine => "evaluate",
        InputValidator => "validate",
        LifecycleHook => "before",
        RateLimiter => "check",
        AuditSink => "deliver",
        MetricsCollector => "collect",
        NotificationChannel => "deliver",
        EncryptionProvider => "encrypt",
        AuthProvider => "verify",
        IdentityProvider => "begin",
        StorageBackend => "get",
    }
}

async fn plugin_command(cmd: PluginCommand) -> anyhow::Result<()> {
    use anyhow::Context;
    match cmd {
        PluginCommand::Run {
            manifest,
            component,
            category,
            function,
            input,
            config,
            repeat,
        } => {
            let manifest: vaultaris::plugins::PluginManifest =
                serde_json::from_str(&std::fs::read_to_string(&manifest)?).context("manifest")?;
            manifest.validate()?;
            let category = vaultaris::plugins::Category::parse(&category)
                .with_context(|| format!("unknown category {category}"))?;
            let report = vaultaris::plugins::runner::run(
                manifest,
                std::fs::read(&component)
                    .with_context(|| format!("reading {}", component.display()))?,
                vaultaris::plugins::runner::RunOptions {
                    category,
                    function: function.unwrap_or_else(|| default_function(category).to_string()),
                    input: json_arg(&input).context("--input")?,
                    config: json_arg(&config).context("--config")?,
                    limits: Default::default(),
                    repeat,
                },
            )
            .await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.ok {
                std::process::exit(2);
            }
            Ok(())
        }
        PluginCommand::Package {
            manifest,
            component,
            out,
        } => {
            let mut m: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&manifest)?).context("manifest")?;
            let bytes = std::fs::read(&component)?;
            m["sha256"] = vaultaris::extensions::install::sha256_hex(&bytes).into();
            m["artifact"] = "plugin.wasm".into();
            let parsed: vaultaris::plugins::PluginManifest = serde_json::from_value(m.clone())?;
            parsed.validate()?;
            std::fs::create_dir_all(&out)?;
            std::fs::write(out.join("plugin.wasm"), &bytes)?;
            std::fs::write(out.join("manifest.json"), serde_json::to_string_pretty(&m)?)?;
            println!("{}", out.display());
            Ok(())
        }
    }
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run());
    // A native plugin call that overran its deadline may still hold a
    // blocking thread (native code cannot be interrupted): shutdown, after
    // the server drained its requests, does not wait for it for long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

async fn run() -> anyhow::Result<()> {
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
        Command::Plugin(cmd) => plugin_command(cmd).await,
        Command::Serve => vaultaris::server::serve(config).await,
        Command::Migrate => {
            let store = vaultaris::server::open_store(&config).await?;
            tracing::info!(database = store.backend(), "migrations applied");
            store.close().await;
            Ok(())
        }
    }
}
