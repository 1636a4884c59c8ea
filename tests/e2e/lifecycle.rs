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

#[tokio::test]
async fn slow_requests_time_out_with_a_problem_and_leave_no_partial_writes() {
    // One hash at a time and a 1 s budget: a burst of password-bearing
    // creations queues behind the semaphore and the tail of it times out.
    let s =
        Server::start_with(&[("REQUEST_TIMEOUT", "1"), ("PASSWORD_HASH_CONCURRENCY", "1")]).await;
    let token = s.setup().await;
    let url = format!("{}/api/v1/tenants/{MASTER}/users", s.base);
    let mut tasks = Vec::new();
    for i in 0..150 {
        let (http, url, token) = (s.http.clone(), url.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let res = http
                .post(url)
                .bearer_auth(token)
                .json(&json!({ "email": format!("burst{i}@example.com"), "password": "burst-password" }))
                .send()
                .await
                .unwrap();
            let ct = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_string());
            (res.status(), ct)
        }));
    }
    let (mut created, mut timed_out) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            (StatusCode::CREATED, _) => created += 1,
            (StatusCode::GATEWAY_TIMEOUT, ct) => {
                assert_eq!(ct.as_deref(), Some("application/problem+json"));
                timed_out += 1;
            }
            (other, _) => panic!("unexpected status {other}"),
        }
    }
    assert!(timed_out > 0, "no request timed out ({created} created)");
    let (_, users) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/users?per_page=1"),
            &token,
        )
        .await;
    let total = users["total"].as_i64().unwrap() - 1; // minus the admin
    // Every 201 is there; a timed-out request left at most its whole write
    // (if it committed in the instant before the deadline), never half of one.
    assert!(
        total >= created && total <= created + timed_out,
        "{total} users for {created} created"
    );
    let (_, v) = s
        .get(
            &format!("/api/v1/tenants/{MASTER}/audit-logs/verify"),
            &token,
        )
        .await;
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        s.audit_count(MASTER, &token).await - 2,
        total,
        "one audit record per user created"
    );
}
