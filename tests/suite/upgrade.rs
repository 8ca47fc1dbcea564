//! Upgrades: every migration in migrations/ is applied one version at a time on top of data written
//! in that version's shape, then today's code serves, authenticates, finds and audits on the result.

use crate::common;

use std::path::{Path, PathBuf};

use child_locator::domain::holding::HoldingInput;
use child_locator::domain::identity::{IndexSecret, Pseudonymiser, RawSubject};
use child_locator::domain::token::Token;
use child_locator::keys::{self, TokenHasher};
use common::{Engine, START_MS, TestApp, TestDb};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Executor};

const ASKER: &str = "E08000035";
const HOLDER: &str = "E08000003";
const NHS: &str = "9074833780";

fn migrations_dir(engine: Engine) -> PathBuf {
    let name = match engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(name)
}

/// Every migration file, in version order (whatever versions exist: others add them over time).
fn migration_files(engine: Engine) -> Vec<(i64, PathBuf)> {
    let mut files: Vec<(i64, PathBuf)> = std::fs::read_dir(migrations_dir(engine))
        .expect("migrations directory")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .map(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).expect("utf-8 name").to_string();
            let version = name.split('_').next().and_then(|v| v.parse().ok()).expect("NNNN_name.sql");
            (version, p)
        })
        .collect();
    files.sort();
    files
}

/// Applies migrations up to and including `version` with sqlx's own migrator (so the final
/// `locator serve` sees them recorded, with their checksums, exactly as an upgrade would).
async fn migrate_to(engine: Engine, pool: &AnyPool, version: i64) {
    let staged = tempfile::tempdir().expect("temp dir");
    for (v, path) in migration_files(engine) {
        if v <= version {
            std::fs::copy(&path, staged.path().join(path.file_name().expect("name"))).expect("copy");
        }
    }
    let migrator = Migrator::new(staged.path()).await.expect("migrations load");
    migrator.run(pool).await.unwrap_or_else(|e| panic!("{engine:?}: migration to {version} failed: {e}"));
}

struct Seeded {
    asker_token: String,
    holder_token: String,
}

/// Data written in the shape of each schema version, as the code of that version wrote it.
/// Versions with no seed of their own are still applied on top of all the data before them.
async fn seed(version: i64, pool: &AnyPool, secret: &keys::SecretBytes, seeded: &mut Seeded) {
    let now = START_MS - 86_400_000;
    match version {
        1 => {
            for (id, code, name) in [(1, ASKER, "Salford"), (2, HOLDER, "Manchester")] {
                sqlx::query(
                    "INSERT INTO organisations (id, code, name, kind, duty_phone, out_of_hours_phone, secure_email, \
                     active, search_text, created_at, updated_at) \
                     VALUES ($1, $2, $3, 'local-authority', '0161 234 5001', NULL, $4, 1, $5, $6, $6)",
                )
                .bind(id as i64)
                .bind(code)
                .bind(name)
                .bind(format!("duty@{}.test.invalid", code.to_lowercase()))
                .bind(format!("{} {}", code.to_lowercase(), name.to_lowercase()))
                .bind(now)
                .execute(pool)
                .await
                .expect("seed organisation");
            }
            let hasher = TokenHasher::new(secret);
            for (id, org, role) in [(1, 1, "practitioner"), (2, 2, "org-admin")] {
                let token = Token::generate();
                sqlx::query(
                    "INSERT INTO users (id, org_id, name, role, token_hash, token_hint, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id as i64)
                .bind(org as i64)
                .bind(format!("Seeded {role}"))
                .bind(role)
                .bind(hasher.hash(&token))
                .bind(token.hint())
                .bind(now)
                .execute(pool)
                .await
                .expect("seed user");
                match role {
                    "practitioner" => seeded.asker_token = token.expose().to_string(),
                    _ => seeded.holder_token = token.expose().to_string(),
                }
            }
        }
        2 => {
            // Pseudonyms computed by the domain code, as the version-2 write path stored them.
            let pseudonymiser = Pseudonymiser::new(&IndexSecret::from_bytes(secret.0));
            let subject = RawSubject {
                nhs_number: Some(NHS.into()),
                given_name: Some("Amy".into()),
                family_name: Some("Okafor".into()),
                date_of_birth: Some("2015-06-01".into()),
                ..RawSubject::default()
            };
            let input = HoldingInput {
                category: Some("child-protection-plan".into()),
                status: Some("open".into()),
                subject: Some(subject),
                ..HoldingInput::default()
            };
            let today = time::macros::date!(2026 - 11 - 23);
            let holding = input
                .into_holding(
                    "MCR-1",
                    &child_locator::domain::keyring::Keyring::new(pseudonymiser.clone(), None),
                    today,
                )
                .expect("valid holding");
            sqlx::query(
                "INSERT INTO holdings (id, org_id, local_ref, category, status, fields_present, key_id, fingerprint, \
                 created_at, updated_at) VALUES (1, 2, $1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&holding.local_ref)
            .bind(holding.category.as_str())
            .bind(holding.status.as_str())
            .bind(i64::from(holding.fields_present.bits()))
            .bind(pseudonymiser.key_id().to_string())
            .bind(holding.fingerprint.to_vec())
            .bind(now)
            .execute(pool)
            .await
            .expect("seed holding");
            for key in &holding.keys {
                sqlx::query("INSERT INTO pseudonyms (pseudonym, holding_id, kind) VALUES ($1, 1, $2)")
                    .bind(key.pseudonym.as_bytes().to_vec())
                    .bind(i64::from(key.kind.id()))
                    .execute(pool)
                    .await
                    .expect("seed pseudonym");
            }
        }
        3 => {
            sqlx::query(
                "INSERT INTO lookup_matches (match_id, lookup_id, seq, asker_user_id, asker_org_id, holding_id, \
                 holder_org_id, tier, purpose, at) \
                 VALUES ('seeded-match', 'seeded-lookup', 0, 1, 1, 1, 2, 'confirmed', 's17-assessment', $1)",
            )
            .bind(now)
            .execute(pool)
            .await
            .expect("seed lookup");
        }
        _ => {}
    }
}

/// PostgreSQL identity columns do not advance when ids are given explicitly; today's inserts
/// must not collide with the seeded rows.
async fn advance_sequences(engine: Engine, pool: &AnyPool) {
    if engine == Engine::Postgres {
        for table in ["organisations", "users", "holdings"] {
            pool.execute(
                format!("SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
                    .as_str(),
            )
            .await
            .expect("setval");
        }
    }
}

#[suite::test(each_engine)]
async fn every_migration_applies_in_turn_over_existing_data_and_todays_code_reads_the_result(engine: Engine) {
    let db = TestDb::new(engine).await;
    let settings = db.settings();
    let secret = keys::generate(&settings.key_file).expect("index key");
    sqlx::any::install_default_drivers();
    let url = match engine {
        Engine::Sqlite => format!("{}?mode=rwc", db.url),
        Engine::Postgres => db.url.clone(),
    };
    let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect(&url).await.expect("connect");
    let files = migration_files(engine);
    assert!(files.len() >= 3, "{engine:?}: expected the migrations in {:?}", migrations_dir(engine));
    let mut seeded = Seeded { asker_token: String::new(), holder_token: String::new() };
    for (version, _) in &files {
        migrate_to(engine, &pool, *version).await;
        seed(*version, &pool, &secret, &mut seeded).await;
    }
    advance_sequences(engine, &pool).await;
    pool.close().await;

    // Today's code on the upgraded database: it opens (nothing left to migrate) and is ready.
    let (db_url, key_file, audit_key_file) =
        (db.url.clone(), settings.key_file.clone(), settings.audit_key_file.clone());
    let app = TestApp::start_with(engine, move |s| {
        s.database_url = db_url;
        s.key_file = key_file;
        s.audit_key_file = audit_key_file;
    })
    .await;
    app.store().ready().await.unwrap_or_else(|e| panic!("{engine:?}: not ready after the upgrade: {e}"));

    // Tokens issued before the upgrade still authenticate; the directory and holding read back.
    let (status, me) = app.get(&seeded.asker_token, "/api/v1/me").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {me}");
    let (status, org) = app.get(&seeded.asker_token, &format!("/api/v1/organisations/{HOLDER}")).await;
    assert_eq!((status, org["name"].as_str()), (StatusCode::OK, Some("Manchester")), "{engine:?}: {org}");
    let (status, holding) = app.get(&seeded.holder_token, "/api/v1/holdings/MCR-1").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {holding}");
    assert_eq!(holding["category"], "child-protection-plan", "{engine:?}: {holding}");
    // Its key list was built from the pseudonyms stored before (migration 0026).
    let stored = app.store().count_pseudonyms().await.unwrap();
    assert!(stored > 0, "{engine:?}: seeded pseudonyms");
    assert_eq!(holding["pseudonym_count"].as_i64(), Some(stored), "{engine:?}: {holding}");

    // A lookup today finds the child through pseudonyms stored before the upgrade.
    let (status, found) = app
        .post(
            &seeded.asker_token,
            "/api/v1/lookups",
            &json!({"subject": {"nhs_number": NHS, "date_of_birth": "2015-06-01"}, "purpose": "s47-enquiry"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {found}");
    let matches = found["matches"].as_array().expect("matches");
    assert!(
        matches.iter().any(|m| m["organisation"]["code"] == HOLDER),
        "{engine:?}: the seeded holding is found: {found}"
    );

    // The holder sees the lookup recorded before the upgrade and the one made after it.
    let (status, received) = app.get(&seeded.holder_token, "/api/v1/lookups/received").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {received}");
    let lookups = received["lookups"].as_array().expect("lookups");
    assert!(lookups.iter().any(|l| l["purpose"] == "s17-assessment"), "{engine:?}: {received}");
    assert!(lookups.iter().any(|l| l["purpose"] == "s47-enquiry"), "{engine:?}: {received}");

    // Writes work on the upgraded schema, and the audit trail written since verifies.
    let (status, body) = app
        .put(
            &seeded.holder_token,
            "/api/v1/holdings/MCR-2",
            &json!({"category": "early-help", "status": "open", "subject": {"given_name": "Ben",
                "family_name": "Kowalski", "date_of_birth": "2019-11-23", "postcode": "M2 3BB"}}),
        )
        .await;
    assert!(status.is_success(), "{engine:?}: {status} {body}");
    // The holding stored before the upgrade goes with every key, found through its list.
    let before = app.store().count_pseudonyms().await.unwrap();
    assert_eq!(app.delete(&seeded.holder_token, "/api/v1/holdings/MCR-1").await.0, StatusCode::NO_CONTENT);
    assert_eq!(app.store().count_pseudonyms().await.unwrap(), before - stored, "{engine:?}: no key left behind");
    // The seeded match was written straight into its table, with no event to sign it (set-up
    // cannot sign): verify names it, as it would any row written around the trail.
    let log = child_locator::audit::stored::verify_stored(app.store(), None).await;
    let said = log.as_ref().map_or_else(ToString::to_string, |_| String::new());
    assert!(said.contains("lookup_matches"), "{engine:?}: the unsigned match is named: {said}");
    app.store().execute_raw_on_audit("DELETE FROM lookup_matches WHERE match_id = 'seeded-match'").await.unwrap();
    let log = child_locator::audit::stored::verify_stored(app.store(), None).await;
    assert!(log.is_ok(), "{engine:?}: audit trail after the upgrade: {log:?}");
}
