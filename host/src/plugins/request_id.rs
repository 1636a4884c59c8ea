//! The request id of the HTTP request being served, for plugin
//! `call-context`s and plugin log lines, without threading it through every
//! domain call: a task-local set by a middleware.

use std::sync::Arc;

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: Arc<str>, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The current request id, or `-` outside a request (background jobs).
pub fn current() -> String {
    REQUEST_ID
        .try_with(|id| id.to_string())
        .unwrap_or_else(|_| "-".to_string())
}
