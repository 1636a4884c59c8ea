//! The audit log is hash-chained per tenant: editing, deleting or truncating
//! records is detected by the verification endpoint.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{MASTER, Server};

async fn populated() -> (Server, String, String) {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    for i in 0..4 {
        s.create(
            &format!("{base}/users"),
            &token,
            json!({ "email": format!("u{i}@example.com") }),
        )
        .await;
    }
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], true, "{v}");
    (s, token, base)
}

#[tokio::test]
async fn edited_record_breaks_the_chain() {
    let (s, token, base) = populated().await;
    s.exec_sql("UPDATE audit_logs SET action = 'user.view' WHERE seq = 3")
        .await;
    let (st, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["broken_at_seq"], 3);
}

#[tokio::test]
async fn deleted_record_breaks_the_chain() {
    let (s, token, base) = populated().await;
    s.exec_sql("DELETE FROM audit_logs WHERE seq = 2").await;
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["broken_at_seq"], 2);
}

#[tokio::test]
async fn truncated_tail_is_detected() {
    let (s, token, base) = populated().await;
    let n = s.audit_count(MASTER, &token).await;
    s.exec_sql(&format!("DELETE FROM audit_logs WHERE seq = {n}"))
        .await;
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], false, "{v}");
}

#[tokio::test]
async fn concurrent_writes_keep_one_unbroken_chain() {
    let (s, token) = Server::with_admin().await;
    let base = format!("/api/v1/tenants/{MASTER}");
    let mut tasks = Vec::new();
    for i in 0..24 {
        let http = s.http.clone();
        let url = format!("{}{base}/groups", s.base);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .json(&json!({ "name": format!("g{i}") }))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::CREATED);
    }
    let (_, v) = s.get(&format!("{base}/audit-logs/verify"), &token).await;
    assert_eq!(v["valid"], true, "{v}");
    let (_, groups) = s.get(&format!("{base}/groups?per_page=100"), &token).await;
    assert_eq!(groups["total"], 24);
}
