//! The store suite: the same behaviour on SQLite and PostgreSQL.

use crate::common;

use std::sync::Arc;

use child_locator::audit::checkpoint::AuditSigningKey;
use child_locator::audit::event::ActorRef;
use child_locator::audit::stored::{StoredVerifyError, verify_stored, verify_stored_sealed};
use child_locator::audit::{Attachment, AuditLog, EventType, NewEvent};
use child_locator::clock::Clock;
use child_locator::domain::identity::Pseudonym;
use child_locator::store::{Store, StoreError};
use common::{Engine, TestDb};

async fn open(db: &TestDb) -> Store {
    Store::open(&db.url).await.expect("store opens and migrates")
}

fn writer(store: &Store) -> (AuditLog, Arc<AuditSigningKey>) {
    let key = Arc::new(AuditSigningKey::generate());
    let (log, _task) =
        AuditLog::start(store.clone(), key.clone(), Clock::manual(common::START_MS), "test/audit".into());
    (log, key)
}

async fn record_many(log: &AuditLog, n: usize) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.record(NewEvent::new(EventType::TokenIssued).details(serde_json::json!({"n": i}))).await
        }));
    }
    for t in tasks {
        t.await.unwrap().expect("appended");
    }
}

/// Rewrites text inside stored bodies, the way someone with database access would.
async fn tamper(store: &Store, engine: Engine, sql_where: &str) {
    let sql = match engine {
        Engine::Sqlite => format!(
            "UPDATE audit_events SET body = CAST(REPLACE(CAST(body AS TEXT), 'token_issued', 'token_issueD') AS BLOB) WHERE {sql_where}"
        ),
        Engine::Postgres => format!(
            "UPDATE audit_events SET body = convert_to(replace(convert_from(body, 'UTF8'), 'token_issued', 'token_issueD'), 'UTF8') WHERE {sql_where}"
        ),
    };
    store.execute_raw_on_audit(&sql).await.unwrap();
}

#[suite::test(each_engine)]
async fn migrations_apply_on_a_fresh_database_and_again_without_change(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    store.migrate().await.expect("second run is a no-op");
    store.ready().await.expect("ready after migration");
    let reopened = open(&db).await;
    reopened.ready().await.unwrap();
}

#[suite::test(each_engine)]
async fn a_database_that_is_not_migrated_is_not_ready(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = Store::connect(&db.url).await.unwrap();
    assert!(store.ready().await.is_err(), "{engine:?}");
}

#[suite::test]
async fn sqlite_settings_that_could_lose_acknowledged_writes_are_refused() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    store.execute_raw("PRAGMA synchronous = OFF").await.unwrap();
    let refused = store.check_durability().await;
    assert!(matches!(refused, Err(StoreError::UnsafeDurability(_))), "{refused:?}");
}

#[suite::test(each_engine)]
async fn concurrent_appends_make_one_log_that_verifies(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, 300).await;
    let verified = verify_stored(&store, Some(key.verifying_key())).await.expect("intact");
    assert_eq!(verified.size, 300, "{engine:?}");
    assert!(verified.signatures_checked);
}

/// A pseudonym that only lookup `i` asked (`salt` tells apart two it asked).
fn pseudonym(i: u8, salt: u8) -> Pseudonym {
    let mut bytes = [i; 16];
    bytes[1] = salt;
    Pseudonym::from_bytes(bytes)
}

/// A lookup by user 7 that asked two pseudonyms of its own.
fn lookup_asking(i: u8) -> NewEvent {
    let mut event = NewEvent::new(EventType::Lookup);
    event.lookup_id = Some(format!("lk_{i}"));
    event.actor = Some(ActorRef { user_id: 7, org_id: 999, org_code: "ASKER".into(), role: "practitioner".into() });
    event.attachments =
        vec![Attachment::LookupPseudonym(pseudonym(i, 0)), Attachment::LookupPseudonym(pseudonym(i, 1))];
    event
}

/// A lookup's commit stores what it asked as one pending row; the writer moves those rows into
/// the by-pseudonym index later. Subject access and the anomaly rules must find every lookup
/// before, during and after the move, and the move must keep each lookup's own pseudonyms.
#[suite::test(each_engine)]
async fn searches_are_found_by_pseudonym_before_during_and_after_their_indexing(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, _key) = writer(&store);
    let appended = log.record_all((0..60).map(lookup_asking).collect()).await.expect("appended");
    let seqs: Vec<i64> = appended.iter().map(|a| a.seq as i64).collect();
    let asked: Vec<Pseudonym> = (0..60).map(|i| pseudonym(i, 1)).collect();
    let (from, to) = (appended[0].at, appended[0].at + 1);

    // One event at a time, so the readers below run between many small moves.
    let mover = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut moved = 0;
            loop {
                match store.index_pending_pseudonyms(1).await.expect("indexed") {
                    0 => break moved,
                    n => moved += n,
                }
                tokio::task::yield_now().await;
            }
        })
    };
    while !mover.is_finished() {
        assert_eq!(store.events_asking(&asked).await.unwrap(), seqs, "{engine:?}: no search lost mid-move");
    }
    assert!(mover.await.unwrap() <= 60, "{engine:?}");
    assert_eq!(store.index_pending_pseudonyms(100).await.unwrap(), 0, "{engine:?}: nothing left pending");

    assert_eq!(store.events_asking(&asked).await.unwrap(), seqs, "{engine:?}: all found once indexed");
    for (i, seq) in (0u8..60).zip(&seqs) {
        assert_eq!(store.events_asking(&[pseudonym(i, 0)]).await.unwrap(), vec![*seq], "{engine:?} lookup {i}");
    }
    let facts = store.lookup_facts(&[7], from, to).await.unwrap();
    assert_eq!(facts.len(), 60, "{engine:?}");
    for (i, fact) in (0u8..60).zip(&facts) {
        let mut keys = fact.child_keys.clone();
        keys.sort_unstable();
        assert_eq!(keys, vec![pseudonym(i, 0).as_bytes().to_vec(), pseudonym(i, 1).as_bytes().to_vec()], "{engine:?}");
    }
}

/// Only the audit writer indexes in a running service: once idle, it empties the backlog itself.
#[suite::test(each_engine)]
async fn the_audit_writer_indexes_what_searches_asked_by_itself_once_idle(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, _key) = writer(&store);
    let appended = log.record_all((0..40).map(lookup_asking).collect()).await.expect("appended");
    let mut waited = 0;
    while store.pending_pseudonym_events().await.unwrap() > 0 && waited < 600 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        waited += 1;
    }
    assert_eq!(store.pending_pseudonym_events().await.unwrap(), 0, "{engine:?}: the writer indexed them");
    let asked: Vec<Pseudonym> = (0..40).map(|i| pseudonym(i, 0)).collect();
    let seqs: Vec<i64> = appended.iter().map(|a| a.seq as i64).collect();
    assert_eq!(store.events_asking(&asked).await.unwrap(), seqs, "{engine:?}");
}

/// The anomaly rules read what each lookup asked whether or not it has been indexed yet.
#[suite::test(each_engine)]
async fn a_lookups_pseudonyms_read_the_same_pending_or_indexed(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, _key) = writer(&store);
    let appended = log.record_all((0..3).map(lookup_asking).collect()).await.expect("appended");
    let (from, to) = (appended[0].at, appended[0].at + 1);
    let keys = |facts: Vec<child_locator::store::audit_views::LookupEventFact>| {
        facts.into_iter().map(|f| (f.seq, f.child_keys.len())).collect::<Vec<_>>()
    };
    let before = keys(store.lookup_facts(&[7], from, to).await.unwrap());
    store.index_pending_pseudonyms(2).await.unwrap(); // two indexed, one still pending
    let during = keys(store.lookup_facts(&[7], from, to).await.unwrap());
    store.index_pending_pseudonyms(2).await.unwrap();
    let after = keys(store.lookup_facts(&[7], from, to).await.unwrap());
    let expected: Vec<(i64, usize)> = appended.iter().map(|a| (a.seq as i64, 2)).collect();
    assert_eq!((before, during, after), (expected.clone(), expected.clone(), expected), "{engine:?}");
}

/// One group commit writes many lookups' rows table by table: each must keep its own.
#[suite::test(each_engine)]
async fn a_group_commit_keeps_each_lookups_asked_pseudonyms_matches_and_organisations(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, _key) = writer(&store);
    let lookup = |i: u8| {
        let mut event = NewEvent::new(EventType::Lookup).concerning([1000 + i64::from(i % 3)]);
        event.lookup_id = Some(format!("lk_{i}"));
        event.actor = Some(ActorRef { user_id: 7, org_id: 999, org_code: "ASKER".into(), role: "practitioner".into() });
        event.attachments = vec![
            Attachment::LookupPseudonym(pseudonym(i, 0)),
            Attachment::LookupPseudonym(pseudonym(i, 0)), // asked twice: kept once
            Attachment::LookupPseudonym(pseudonym(i, 0xff)),
            Attachment::LookupMatch {
                match_id: format!("lm_{i}"),
                holding_id: 500 + i64::from(i),
                holder_org_id: 1000 + i64::from(i % 3),
                tier: "confirmed",
                basis: "child",
                shielded: false,
            },
        ];
        event
    };
    // Queued together, so they share commits.
    let appended = log.record_all((0..40).map(lookup).collect()).await.expect("appended");
    for (i, at) in (0u8..40).zip(&appended) {
        let seq = at.seq as i64;
        assert_eq!(store.events_asking(&[pseudonym(i, 0)]).await.unwrap(), vec![seq], "{engine:?} lookup {i}");
        assert_eq!(store.events_asking(&[pseudonym(i, 0xff)]).await.unwrap(), vec![seq], "{engine:?}");
        assert_eq!(store.lookups_matching_holdings(&[500 + i64::from(i)]).await.unwrap(), vec![seq], "{engine:?}");
    }
    let first = appended[0].at;
    let mut scoped: Vec<i64> =
        store.scoped_lookups(1001, first, first + 1).await.unwrap().into_iter().map(|(seq, _)| seq).collect();
    scoped.sort_unstable();
    let expected: Vec<i64> = appended.iter().skip(1).step_by(3).map(|a| a.seq as i64).collect();
    assert_eq!(scoped, expected, "{engine:?}: the organisation sees exactly the lookups that concern it");
}

#[suite::test(each_engine)]
async fn two_nodes_on_one_database_append_to_one_consistent_log(engine: Engine) {
    let db = TestDb::new(engine).await;
    let node_a = open(&db).await;
    let node_b = Store::connect(&db.url).await.unwrap();
    let key = Arc::new(AuditSigningKey::generate());
    let (log_a, _) = AuditLog::start(node_a.clone(), key.clone(), Clock::manual(1), "test/audit".into());
    let (log_b, _) = AuditLog::start(node_b.clone(), key.clone(), Clock::manual(2), "test/audit".into());
    tokio::join!(record_many(&log_a, 150), record_many(&log_b, 150));
    let verified = verify_stored(&node_a, Some(key.verifying_key())).await.expect("one consistent log");
    assert_eq!(verified.size, 300, "{engine:?}");
}

#[suite::test(each_engine)]
async fn verify_names_the_first_changed_entry(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, 20).await;
    tamper(&store, engine, "seq = 7").await;
    let err = verify_stored(&store, Some(key.verifying_key())).await.unwrap_err();
    assert!(err.to_string().starts_with("entry 7"), "{engine:?}: {err}");
}

#[suite::test(each_engine)]
async fn verify_catches_a_deleted_entry_and_a_truncated_tail(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, 20).await;
    store.execute_raw_on_audit("DELETE FROM audit_events WHERE seq = 4").await.unwrap();
    let err = verify_stored(&store, Some(key.verifying_key())).await.unwrap_err();
    assert!(err.to_string().contains("entry 4"), "{engine:?}: {err}");

    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, 20).await;
    store.execute_raw_on_audit("DELETE FROM audit_events WHERE seq >= 15").await.unwrap();
    let err = verify_stored(&store, Some(key.verifying_key())).await.unwrap_err();
    assert!(matches!(err, StoredVerifyError::Log(_)), "{engine:?}: {err}");
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[suite::test]
async fn verify_catches_two_rows_swapped_with_their_numbers() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, 10).await;
    // Swap the contents of rows 2 and 3 but keep the seq column in order.
    store
        .execute_raw_on_audit(
            "UPDATE audit_events SET seq = -1 WHERE seq = 2; UPDATE audit_events SET seq = 2 WHERE seq = 3; \
             UPDATE audit_events SET seq = 3 WHERE seq = -1;",
        )
        .await
        .unwrap();
    let err = verify_stored(&store, Some(key.verifying_key())).await.unwrap_err();
    assert!(err.to_string().starts_with("entry 2"), "{err}");
}

#[suite::test(each_engine)]
async fn appends_fail_closed_when_the_database_refuses_the_write(engine: Engine) {
    let db = TestDb::new(engine).await;
    let store = open(&db).await;
    let (log, _) = writer(&store);
    common::refuse_audit_writes(&store, engine).await;
    let result = log.record(NewEvent::new(EventType::Lookup)).await;
    assert!(result.is_err(), "{engine:?}");
    assert_eq!(store.audit_head().await.unwrap().size, 0, "nothing half-written");
}

/// The files of an SQLite index, for the tests that move, restore and remove them.
fn sqlite_files(dir: &std::path::Path) -> [std::path::PathBuf; 6] {
    [
        "locator.db",
        "locator.db-wal",
        "locator.db-shm",
        "locator-audit.db",
        "locator-audit.db-wal",
        "locator-audit.db-shm",
    ]
    .map(|name| dir.join(name))
}

/// An SQLite index with `entries` audit entries, closed, and a backup of it: one file in the
/// layout from before the audit trail had a file of its own.
async fn index_and_backup(entries: usize) -> (TestDb, std::path::PathBuf, Arc<AuditSigningKey>) {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let (log, key) = writer(&store);
    record_many(&log, entries - 1).await;
    // Free text lives beside its leaf (leaf v2): the backup must carry it too.
    let mut typed = NewEvent::new(EventType::Lookup);
    typed.free_text = Some("typed by a person".into());
    log.record(typed).await.expect("appended");
    let backup = db.dir.path().join("backup.db");
    store.sqlite_backup_into(&backup).await.expect("backup");
    drop(log);
    store.close().await;
    (db, backup, key)
}

/// Puts a backup in place of the database, as the operator guide's restore does, removing the
/// database's own files first (all of them, or all but the audit trail's).
fn restore(db: &TestDb, backup: &std::path::Path, keep_audit_file: bool) {
    for file in sqlite_files(db.dir.path()) {
        let audit = file.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("locator-audit"));
        if !(keep_audit_file && audit) {
            let _ = std::fs::remove_file(file);
        }
    }
    std::fs::copy(backup, db.dir.path().join("locator.db")).expect("restore");
}

#[suite::test]
async fn a_backup_restores_into_two_files_with_the_whole_trail() {
    let (db, backup, key) = index_and_backup(30).await;
    restore(&db, &backup, false);
    let store = open(&db).await;
    store.ready().await.expect("ready after the restore");
    assert_eq!(store.audit_head().await.unwrap().size, 30);
    verify_stored_sealed(&store, Some(key.verifying_key()), Some(&key.leaf_key()), &[])
        .await
        .expect("the restored trail verifies, its free text with it");
    let (log, _) = writer(&store);
    record_many(&log, 5).await;
    assert_eq!(store.audit_head().await.unwrap().size, 35, "and goes on");
    assert!(db.dir.path().join("locator-audit.db").exists());
}

#[suite::test]
async fn a_backup_keeps_the_searches_whose_pseudonyms_are_not_yet_indexed() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let (log, _key) = writer(&store);
    let appended = log.record_all((0..5).map(lookup_asking).collect()).await.expect("appended");
    store.index_pending_pseudonyms(2).await.unwrap(); // two indexed, three still pending
    let backup = db.dir.path().join("backup.db");
    store.sqlite_backup_into(&backup).await.expect("backup");
    drop(log);
    store.close().await;

    restore(&db, &backup, false);
    let store = open(&db).await;
    let asked: Vec<Pseudonym> = (0..5).flat_map(|i| [pseudonym(i, 0), pseudonym(i, 1)]).collect();
    let seqs: Vec<i64> = appended.iter().map(|a| a.seq as i64).collect();
    assert_eq!(store.events_asking(&asked).await.unwrap(), seqs);
    assert_eq!(store.index_pending_pseudonyms(10).await.unwrap(), 0, "the restored copy has them indexed");
    for (i, seq) in (0u8..5).zip(&seqs) {
        assert_eq!(store.events_asking(&[pseudonym(i, 1)]).await.unwrap(), vec![*seq], "lookup {i}");
    }
}

#[suite::test]
async fn a_move_cut_short_after_the_copy_finishes_at_the_next_start() {
    let (db, backup, key) = index_and_backup(12).await;
    restore(&db, &backup, false);
    open(&db).await.close().await;
    // The trail is in its own file; put the old layout back beside it, as if the process had
    // died after copying the trail and before dropping it from the main file.
    std::fs::copy(&backup, db.dir.path().join("locator.db")).unwrap();
    let store = open(&db).await;
    assert_eq!(store.audit_head().await.unwrap().size, 12);
    verify_stored(&store, Some(key.verifying_key())).await.expect("one trail, not two");
}

#[suite::test]
async fn a_restore_beside_a_newer_audit_file_is_refused_not_merged() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let (log, _) = writer(&store);
    record_many(&log, 10).await;
    let backup = db.dir.path().join("backup.db");
    store.sqlite_backup_into(&backup).await.unwrap();
    record_many(&log, 5).await;
    drop(log);
    store.close().await;

    restore(&db, &backup, true);
    let refused = Store::open(&db.url).await.expect_err("two different trails");
    let message = refused.to_string();
    assert!(message.contains("remove the old audit file"), "{message}");
    assert!(message.contains("of 10 entries") && message.contains("another of 15"), "{message}");
}

#[suite::test]
async fn a_missing_or_replaced_audit_file_is_refused_not_restarted() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let (log, _) = writer(&store);
    record_many(&log, 3).await;
    drop(log);
    store.close().await;
    for file in &sqlite_files(db.dir.path())[3..] {
        let _ = std::fs::remove_file(file);
    }
    let refused = Store::open(&db.url).await.expect_err("a new, empty trail is not this database's");
    assert!(refused.to_string().contains("is not the audit trail of"), "{refused}");
    // And it stays refused: the empty file the attempt created is not adopted either.
    assert!(Store::open(&db.url).await.is_err());
}

/// A sync drops a million holdings' old keys in statements of thousands of (key, holding)
/// pairs: each pair must be one search of the primary key, never a scan of the whole index.
#[suite::test]
async fn dropping_keys_searches_the_primary_key_for_each_pair() {
    let db = TestDb::new(Engine::Sqlite).await;
    let store = open(&db).await;
    let sql = child_locator::store::key_changes::drop_keys_sql(child_locator::store::Engine::Sqlite, 64);
    let plan = store.sqlite_query_plan(&sql).await.expect("a plan");
    assert!(
        plan.iter().any(|step| step.contains("SEARCH pseudonyms USING PRIMARY KEY (pseudonym=? AND holding_id=?)")),
        "{plan:?}"
    );
    assert!(!plan.iter().any(|step| step.starts_with("SCAN pseudonyms")), "{plan:?}");
}
