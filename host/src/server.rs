//! Start-up: configuration, database, master key, router, layers, graceful
//! shutdown.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::context::Ctx;
use crate::crypto::sealing::MasterKey;
use crate::store::{Store, StoreOptions};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Opens (and migrates) the database named by the configuration.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    if config.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let opts = StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.database_max_connections,
    };
    Store::open(&opts).await.context("opening the database")
}

/// The master key from `VAULTARIS_MASTER_KEY`, or `master.key` in the data
/// directory (created with mode 0600 on first start).
pub fn load_master_key(config: &Config) -> anyhow::Result<MasterKey> {
    if let Some(k) = &config.master_key {
        return MasterKey::from_base64(k).context("VAULTARIS_MASTER_KEY");
    }
    if !config.database_url.starts_with("sqlite:") {
        tracing::warn!(
            "VAULTARIS_MASTER_KEY is unset: using a key file; every node sharing this database needs the same key"
        );
    }
    let path = config.data_dir.join("master.key");
    if !path.exists() {
        std::fs::create_dir_all(&config.data_dir)?;
        write_private(&path, &MasterKey::generate_base64())?;
        tracing::info!(path = %path.display(), "generated a new master key");
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    MasterKey::from_base64(&text).with_context(|| format!("master key in {}", path.display()))
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// The full application: routes plus request id, tracing, timeout, CORS and
/// panic containment.
pub fn app(ctx: Ctx) -> axum::Router {
    let config = ctx.config.clone();
    let cors = if config.cors_origins.is_empty() {
        CorsLayer::new()
    } else {
        let origins: Vec<HeaderValue> = config
            .cors_origins
            .iter()
            .filter_map(|o| o.parse().ok())
            .collect();
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderName::from_static("dpop"),
            ])
            // Browser clients doing DPoP must read the server's nonce and
            // challenges.
            .expose_headers([
                axum::http::HeaderName::from_static("dpop-nonce"),
                axum::http::header::WWW_AUTHENTICATE,
            ])
    };
    crate::http::router(ctx)
        .layer(
            tower::ServiceBuilder::new()
                .layer(axum::error_handling::HandleErrorLayer::new(request_timed_out))
                .timeout(config.request_timeout),
        )
        .layer(cors)
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id, tenant_id = tracing::field::Empty)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(CatchPanicLayer::new())
}

/// A request that ran past `REQUEST_TIMEOUT` answers 504 problem+json; its
/// handler future is dropped, which rolls back any open transaction.
async fn request_timed_out(err: tower::BoxError) -> crate::http::problem::Problem {
    if err.is::<tower::timeout::error::Elapsed>() {
        crate::http::problem::Problem::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            "Request Timeout",
            "the request took longer than the server allows",
        )
    } else {
        tracing::error!(error = %err, "middleware failure");
        crate::http::problem::Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal Server Error",
            "an unexpected error occurred",
        )
    }
}

/// Runs the server until SIGINT or SIGTERM, then drains in-flight requests.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let master = load_master_key(&config)?;
    let addr = SocketAddr::new(config.host, config.port);
    let external = config.external_url.clone();
    let redis_url = config.redis_url.clone();
    let mut ctx = Ctx::new(config, store.clone(), master)?;
    if let Some(url) = redis_url {
        ctx.replay = crate::oauth::replay::ReplayCache::redis(&url)
            .await
            .context("connecting to REDIS_URL")?;
        tracing::info!("one-time identifiers (DPoP, client assertions) shared through Redis");
    }
    if let Some(feed) = ctx.plugins.take_failure_feed() {
        tokio::spawn(crate::extensions::failures::audit_failures(
            store.clone(),
            feed,
        ));
    }
    // Read before loading, so a change another node makes meanwhile is
    // picked up by the first sync.
    let sync_from = crate::extensions::cluster_sync::fingerprints(&ctx)
        .await
        .context("reading plugin activations")?;
    crate::extensions::startup::load_all(&ctx)
        .await
        .context("loading plugins")?;
    tokio::spawn(crate::extensions::audit_feed::run(ctx.clone()));
    tokio::spawn(crate::extensions::metrics_feed::run(
        ctx.clone(),
        std::time::Duration::from_millis(ctx.config.plugins.metrics_interval_ms),
    ));
    tokio::spawn(crate::extensions::cluster_sync::run(
        ctx.clone(),
        std::time::Duration::from_millis(ctx.config.plugins.sync_interval_ms),
        sync_from,
    ));
    tokio::spawn(purge_expired_state(store.clone()));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(address = %listener.local_addr()?, external_url = %external, database = store.backend(), "vaultaris listening");
    axum::serve(
        listener,
        app(ctx).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown_signal())
    .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Deletes expired codes, refresh tokens, revocation records and sessions
/// every ten minutes; nothing depends on it for correctness (every read
/// checks expiry), it only keeps the tables small.
async fn purge_expired_state(store: crate::store::Store) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        match store
            .purge_expired_oauth_state(crate::time::Timestamp::now())
            .await
        {
            Ok(n) if n > 0 => tracing::info!(rows = n, "purged expired OAuth state"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "purging expired OAuth state failed"),
        }
        if let Err(e) = store.purge_expired_kv(crate::time::Timestamp::now()).await {
            tracing::warn!(error = %e, "purging expired plugin key-value entries failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}
