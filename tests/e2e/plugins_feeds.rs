//! Categories fed in the background or behind another capability:
//! metrics-collector (`influx-metrics` posting line protocol to a local
//! InfluxDB stand-in) and storage-backend (`file-store` taking over the
//! key-value store of the tenant's other plugins).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plugin_support::{Build, activate, install};
use crate::rp::{Tenant, tenant};
use crate::support::Server;

/// A minimal HTTP server that records request bodies and answers 204.
async fn recording_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            seen.lock().unwrap().push(
                                String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string(),
                            );
                            let _ = sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, bodies)
}

async fn client_token(s: &Server, admin: &str, t: &Tenant) -> (String, String) {
    let c = s
        .create(
            &format!("/api/v1/tenants/{}/clients", t.tid),
            admin,
            json!({"client_id": "svc", "name": "svc", "client_type": "confidential", "grant_types": ["client_credentials"], "scopes": ["api"]}),
        )
        .await;
    (
        "svc".into(),
        c["client_secret"].as_str().unwrap().to_string(),
    )
}

both_builds!(metrics_collector_receives_the_tenants_request_and_plugin_metrics => metrics_collector_receives_the_tenants_request_and_plugin_metrics_wasm, metrics_collector_receives_the_tenants_request_and_plugin_metrics_native);

async fn metrics_collector_receives_the_tenants_request_and_plugin_metrics(build: Build) {
    let (port, bodies) = recording_server().await;
    let s = build
        .server(&[
            ("PLUGIN_HTTP_ALLOWED_HOSTS", "127.0.0.1"),
            ("PLUGIN_METRICS_INTERVAL_MS", "300"),
        ])
        .await;
    let admin = s.setup().await;
    install(&s, &admin, &build.plugin("influx-metrics")).await;
    install(&s, &admin, &build.plugin("noop-customizer")).await;
    let a = tenant(&s, &admin, "metrics-a").await;
    let b = tenant(&s, &admin, "metrics-b").await;
    activate(
        &s,
        &admin,
        &a.tid,
        "influx-metrics",
        json!({"url": format!("http://127.0.0.1:{port}/api/v2/write?org=acme&bucket=vaultaris"), "token": "s3cret", "tags": {"env": "test"}}),
    )
    .await;
    activate(&s, &admin, &a.tid, "noop-customizer", json!({})).await;
    let (id_a, secret_a) = client_token(&s, &admin, &a).await;
    let (id_b, secret_b) = client_token(&s, &admin, &b).await;
    for _ in 0..3 {
        let (st, _) = s
            .form(
                &format!("/t/{}", a.slug),
                &[("grant_type", "client_credentials")],
                Some((&id_a, &secret_a)),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
        let (st, _) = s
            .form(
                &format!("/t/{}", b.slug),
                &[("grant_type", "client_credentials")],
                Some((&id_b, &secret_b)),
            )
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let found = bodies
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|b| {
                // A batch sent before the token requests (only the admin
                // call in it) does not count: wait for one after them.
                b.contains("vaultaris_plugin_calls_total")
                    && b.contains("vaultaris_http_requests_total")
                    && b.contains("route=oauth")
            })
            .cloned();
        if let Some(b) = found {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics batch arrived: {:?}",
            bodies.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(body.contains(&format!("tenant={}", a.tid)), "{body}");
    assert!(body.contains("env=test"), "{body}");
    assert!(body.contains("plugin=noop-customizer"), "{body}");
    assert!(body.contains("route=oauth"), "{body}");
    assert!(
        body.contains("vaultaris_http_request_duration_seconds"),
        "{body}"
    );
    let all = bodies.lock().unwrap().join("\n");
    assert!(
        !all.contains(&b.tid),
        "tenant B has no collector: its metrics must not be sent"
    );
}

both_builds!(storage_backend_takes_over_the_key_value_store_of_the_tenants_plugins => storage_backend_takes_over_the_key_value_store_of_the_tenants_plugins_wasm, storage_backend_takes_over_the_key_value_store_of_the_tenants_plugins_native);

pub(crate) async fn storage_backend_takes_over_the_key_value_store_of_the_tenants_plugins(
    build: Build,
) {
    let (s, admin) = build.server_with_admin(&[]).await;
    install(&s, &admin, &build.plugin("file-store")).await;
    install(&s, &admin, &build.plugin("fixed-window-limiter")).await;
    let a = tenant(&s, &admin, "store-a").await;
    let b = tenant(&s, &admin, "store-b").await;
    let limiter = json!({"scopes": {"token": {"limit": 2, "window_ms": 60000}}});
    activate(&s, &admin, &a.tid, "file-store", json!({"fsync": false})).await;
    // The limiter's 20 ms default deadline also bounds its key-value calls,
    // which now go through a second plugin to the disk: give it room.
    let (st, v) = s
        .put(
            &format!("/api/v1/tenants/{}/plugins/fixed-window-limiter", a.tid),
            &admin,
            json!({"config": limiter.clone(), "limits": {"deadline_ms": 2000}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    activate(&s, &admin, &b.tid, "fixed-window-limiter", limiter).await;
    let (id_a, secret_a) = client_token(&s, &admin, &a).await;
    let (id_b, secret_b) = client_token(&s, &admin, &b).await;
    for (t, id, secret) in [(&a, &id_a, &secret_a), (&b, &id_b, &secret_b)] {
        for i in 0..3 {
            let (st, v) = s
                .form(
                    &format!("/t/{}", t.slug),
                    &[("grant_type", "client_credentials")],
                    Some((id, secret)),
                )
                .await;
            let expected = if i < 2 {
                StatusCode::OK
            } else {
                StatusCode::TOO_MANY_REQUESTS
            };
            assert_eq!(st, expected, "{}: request {i}: {v}", t.slug);
        }
    }
    // Tenant A's counters live in file-store's private directory; tenant
    // B's in the built-in store.
    let dir = std::path::Path::new(&s.data_dir())
        .join("plugin-files")
        .join(&a.tid)
        .join("file-store");
    let files: Vec<_> = walk(&dir);
    assert!(
        !files.is_empty(),
        "file-store wrote nothing under {}",
        dir.display()
    );
    let b_dir = std::path::Path::new(&s.data_dir())
        .join("plugin-files")
        .join(&b.tid);
    assert!(walk(&b_dir).is_empty(), "tenant B has no storage backend");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}
