//! Measures effective-permission resolution (`check-access`) for a user in
//! 50 groups, each 10 levels deep, with 200 roles (50 of them composite),
//! against the same user shape 1 level deep, on SQLite and (when
//! `VAULTARIS_BENCH_POSTGRES_URL` is set) PostgreSQL. Prints numbers; asserts
//! nothing about time.
//!
//! Run: `cargo run --release -p vaultaris-bench --bin bench-check-access`

use std::time::{Duration, Instant};

use uuid::Uuid;
use vaultaris::authz::{self, roles};
use vaultaris::config::Config;
use vaultaris::context::Ctx;
use vaultaris::crypto::sealing::MasterKey;
use vaultaris::identity::{groups, users};
use vaultaris::model::{Actor, MASTER_TENANT_ID};
use vaultaris::store::{Store, StoreOptions};
use vaultaris::tenancy::setup;

const ROLES: usize = 200;
const COMPOSITES: usize = 50;
const GROUPS: usize = 50;

async fn build_user(
    ctx: &Ctx,
    actor: &Actor,
    depth: usize,
    role_ids: &[Uuid],
    tag: &str,
    roles_on_ancestors: bool,
) -> anyhow::Result<Uuid> {
    let t = MASTER_TENANT_ID;
    let user = users::create(
        ctx,
        actor,
        t,
        serde_json::from_value(serde_json::json!({ "email": format!("{tag}@bench.example") }))?,
    )
    .await?;
    for g in 0..GROUPS {
        let mut parent: Option<Uuid> = None;
        for level in 0..depth {
            let group = groups::create(
                ctx,
                actor,
                t,
                groups::CreateGroup {
                    name: format!("{tag}-g{g}-l{level}"),
                    description: None,
                    parent_id: parent,
                },
            )
            .await?;
            // With roles on every level, resolution must collect along the whole
            // chain; without, it still walks the chain but finds roles only at
            // the leaf, which isolates the cost of depth itself.
            if roles_on_ancestors || level + 1 == depth {
                let role = role_ids[(g * depth + level) % role_ids.len()];
                groups::assign_role(ctx, actor, t, group.id, role).await?;
            }
            parent = Some(group.id);
        }
        groups::add_member(ctx, actor, t, parent.expect("depth >= 1"), user.id).await?;
    }
    Ok(user.id)
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let n = samples.len();
    let mean = samples.iter().sum::<Duration>() / n as u32;
    let pct = |p: f64| samples[((n as f64 * p) as usize).min(n - 1)];
    println!(
        "{label:<44} mean {:>8.1} µs   p50 {:>8.1} µs   p99 {:>8.1} µs   ({:.0} checks/s on one task)",
        mean.as_secs_f64() * 1e6,
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        1.0 / mean.as_secs_f64()
    );
}

async fn run(label: &str, url: String, dir: &std::path::Path) -> anyhow::Result<()> {
    let store = Store::open(&StoreOptions {
        url,
        max_connections: 4,
    })
    .await?;
    let mut config = Config::from_env()?;
    config.data_dir = dir.to_path_buf();
    let ctx = Ctx::new(
        config,
        store,
        MasterKey::from_base64(&MasterKey::generate_base64())?,
    )?;
    let actor = Actor::system();
    setup::run(
        &ctx,
        &actor,
        setup::SetupRequest {
            admin_email: "admin@bench.example".into(),
            admin_password: "bench-password".into(),
            organization_name: "Bench".into(),
        },
    )
    .await?;
    let t = MASTER_TENANT_ID;
    let started = Instant::now();
    let mut role_ids = Vec::new();
    for i in 0..ROLES {
        let composite = i >= ROLES - COMPOSITES;
        let role = roles::create_role(
            &ctx,
            &actor,
            t,
            roles::CreateRole {
                name: format!("role-{i}"),
                description: None,
                is_composite: composite,
                application_id: None,
            },
        )
        .await?;
        if composite {
            // Each composite role contains three simple roles.
            for k in 0..3 {
                roles::add_composite(
                    &ctx,
                    &actor,
                    t,
                    role.id,
                    role_ids[(i * 3 + k) % (ROLES - COMPOSITES)],
                )
                .await?;
            }
        } else {
            let perm = roles::create_permission(
                &ctx,
                &actor,
                t,
                roles::CreatePermission {
                    resource: format!("resource{i}"),
                    action: "read".into(),
                    description: None,
                    application_id: None,
                },
            )
            .await?;
            roles::grant(&ctx, &actor, t, role.id, perm.id).await?;
        }
        role_ids.push(role.id);
    }
    let deep = build_user(&ctx, &actor, 10, &role_ids, "deep", true).await?;
    let deep_leaf = build_user(&ctx, &actor, 10, &role_ids, "deepleaf", false).await?;
    let shallow = build_user(&ctx, &actor, 1, &role_ids, "shallow", true).await?;
    println!(
        "[{label}] built 200 roles, 1050 groups, 3 users in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if std::env::var("BENCH_NO_ANALYZE").is_err() {
        // Steady state: planner statistics exist (autovacuum's job in production).
        ctx.store.refresh_statistics().await?;
    }
    for (name, user) in [
        ("50 groups x 10 levels, 200 roles", deep),
        ("50 groups x 10 levels, roles on leaves", deep_leaf),
        ("50 groups x 1 level, 200 roles", shallow),
    ] {
        let grants = ctx.store.effective_grants(t, user).await?;
        let distinct: std::collections::BTreeSet<_> =
            grants.iter().map(|g| (&g.resource, &g.action)).collect();
        for _ in 0..20 {
            authz::check_access(&ctx, t, user, "resource7", "read").await?;
        }
        let s = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(ctx.store.effective_grants(t, user).await?);
        }
        println!(
            "[{label}]   raw effective_grants query: {:.1} µs",
            s.elapsed().as_secs_f64() * 1e6 / 20.0
        );
        let s = Instant::now();
        for _ in 0..20 {
            std::hint::black_box(ctx.store.get_user(t, user).await?);
        }
        println!(
            "[{label}]   get_user: {:.1} µs",
            s.elapsed().as_secs_f64() * 1e6 / 20.0
        );
        for (check, resource) in [("allowed", "resource7"), ("denied", "nothing")] {
            let iterations: usize = std::env::var("BENCH_ITERATIONS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2000);
            let mut samples = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let s = Instant::now();
                let d = authz::check_access(&ctx, t, user, resource, "read").await?;
                samples.push(s.elapsed());
                std::hint::black_box(d);
            }
            report(&format!("[{label}] {name}, {check}"), samples);
        }
        println!("[{label}]   ({} effective permissions)", distinct.len());
    }
    ctx.store.close().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("vaultaris-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    run(
        "sqlite",
        format!("sqlite://{}", dir.join("bench.db").display()),
        &dir,
    )
    .await?;
    if let Ok(admin) = std::env::var("VAULTARIS_BENCH_POSTGRES_URL") {
        use sqlx::Connection;
        let name = format!("vaultaris_bench_{}", Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut c)
            .await?;
        let mut url = url::Url::parse(&admin)?;
        url.set_path(&name);
        let result = run("postgres", url.to_string(), &dir).await;
        if std::env::var("BENCH_KEEP").is_ok() {
            println!("kept database {name}");
        } else {
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut c)
                .await?;
        }
        result?;
    }
    if std::env::var("BENCH_KEEP").is_ok() {
        println!("kept {}", dir.display());
    } else {
        std::fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
