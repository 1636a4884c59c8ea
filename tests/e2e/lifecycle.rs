//! Process lifecycle: graceful shutdown, restart on the same data, the
//! `migrate` command, health and readiness.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, MASTER, Server};

#[tokio::test]
async fn sigterm_drains_and_exits_cleanly_and_data_survives_a_restart() {
    let (mut s, token) = Server::with_admin().await;
    let (st, h) = s.call(Method::GET, "/health", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h["status"], "ok");
    let u = s
        .create(
            &format!("/api/v1/tenants/{MASTER}/users"),
            &token,
            json!({ "email": "keep@example.com" }),
        )
        .await;
    // Requests carry a request id, generated when the client sends none.
    let res = s
        .http
        .get(format!("{}/health", s.base))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let res = s
        .http
        .get(format!("{}/health", s.base))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123");

    let status = s.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status:?}");

    // `migrate` on the existing database is a no-op that succeeds.
    let out = s.run_cli(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new process on the same database and master key serves the same data
    // and verifies tokens signed before the restart.
    let data_dir = s.data_dir();
    let s2 = Server::start_with(&[
        ("DATABASE_URL", s.database_url.as_str()),
        ("VAULTARIS_DATA_DIR", data_dir.as_str()),
        ("EXTERNAL_URL", s.base.as_str()),
    ])
    .await;
    let (st, got) = s2
        .get(
            &format!(
                "/api/v1/tenants/{MASTER}/users/{}",
                u["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{got}");
    let fresh = s2
        .password_token("", "admin-cli", ADMIN_EMAIL, ADMIN_PASSWORD)
        .await;
    let (_, v) = s2
        .get(
            &format!("/api/v1/tenants/{MASTER}/audit-logs/verify"),
            &fresh,
        )
        .await;
    assert_eq!(v["valid"], true);
}
