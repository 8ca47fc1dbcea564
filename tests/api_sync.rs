//! Full-replace caseload sync, CSV and NDJSON, through the HTTP API on every engine.

mod common;

use child_locator::domain::role::Role;
use common::{TestApp, engines};
use reqwest::StatusCode;

const HEADER: &str = "local_ref,category,status,nhs_number,upn,given_name,family_name,date_of_birth,postcode";

fn caseload(rows: &[&str]) -> String {
    let mut text = String::from(HEADER);
    for r in rows {
        text.push('\n');
        text.push_str(r);
    }
    text.push('\n');
    text
}

const AMY: &str = "R-1,child-in-need,open,9074833780,,Amy,Okafor,2015-06-01,M1 1AE";
const BEN: &str = "R-2,early-help,open,,,Ben,Kowalski,2019-11-23,M2 3BB";
const CARA: &str = "R-3,looked-after,open,8762328603,,Cara,Singh-Patel,2012-01-30,";

#[tokio::test]
async fn a_csv_sync_adds_then_is_idempotent_then_replaces() {
    for engine in engines() {
        let app = TestApp::start(engine).await;
        let org = app.org("E08000003", "local-authority").await;
        let admin = app.token(&org, Role::OrgAdmin).await;

        let (status, s) = app.sync(&admin, "text/csv", caseload(&[AMY, BEN, CARA]), "").await;
        assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
        assert_eq!((s["added"].as_u64(), s["rejected"].as_array().unwrap().len()), (Some(3), 0), "{s}");

        let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, BEN, CARA]), "").await;
        assert_eq!((s["unchanged"].as_u64(), s["added"].as_u64(), s["updated"].as_u64()), (Some(3), Some(0), Some(0)));

        let closed_ben = BEN.replace(",open,", ",closed,");
        let bad = "R-4,child-in-need,open,1234567890,,Dan,Evans,2014-02-02,";
        let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, &closed_ben, bad]), "").await;
        assert_eq!(s["unchanged"], 1);
        assert_eq!(s["updated"], 1);
        assert_eq!(s["removed"], 1, "CARA is absent from the file");
        let rejected = s["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 1, "{s}");
        assert_eq!(rejected[0]["line"], 4);
        assert_eq!(rejected[0]["field"], "subject.nhs_number");
        assert!(!rejected[0]["message"].as_str().unwrap().contains("1234567890"));
        assert_eq!(app.get(&admin, "/api/v1/holdings/R-3").await.0, StatusCode::NOT_FOUND);
        assert_eq!(app.get(&admin, "/api/v1/holdings/R-2").await.1["status"], "closed");
        assert!(app.audit_types().await.iter().filter(|t| *t == "sync_run").count() >= 3);
    }
}

#[tokio::test]
async fn coverage_counts_follow_every_add_and_removal_without_counting_the_table() {
    for engine in engines() {
        let app = TestApp::start(engine).await;
        let first = app.org("E08000003", "local-authority").await;
        let second = app.org("E08000007", "local-authority").await;
        let (first_admin, second_admin) =
            (app.token(&first, Role::OrgAdmin).await, app.token(&second, Role::OrgAdmin).await);
        assert_eq!(app.store().coverage().await.unwrap(), (0, 0, None), "{engine:?}: nothing synced yet");

        app.sync(&first_admin, "text/csv", caseload(&[AMY, BEN, CARA]), "").await;
        app.sync(&second_admin, "text/csv", caseload(&[BEN]), "").await;
        let (holdings, organisations, latest) = app.store().coverage().await.unwrap();
        assert_eq!((holdings, organisations), (4, 2), "{engine:?}");
        assert!(latest.is_some());

        // An update and an unchanged row change nothing; a removal counts down.
        let closed_ben = BEN.replace(",open,", ",closed,");
        app.sync(&first_admin, "text/csv", caseload(&[AMY, &closed_ben]), "").await;
        assert_eq!(app.store().coverage().await.unwrap().0, 3, "{engine:?}");
        app.sync(&second_admin, "text/csv", caseload(&[AMY]), "").await;
        assert_eq!(app.store().coverage().await.unwrap().0, 3, "{engine:?}: one removed, one added");
        assert_eq!(app.delete(&second_admin, "/api/v1/holdings/R-1").await.0, StatusCode::NO_CONTENT);
        let (holdings, organisations, _) = app.store().coverage().await.unwrap();
        assert_eq!((holdings, organisations), (2, 1), "{engine:?}: an organisation with none no longer counts");
    }
}

#[tokio::test]
async fn an_ndjson_sync_takes_one_holding_per_line() {
    for engine in engines() {
        let app = TestApp::start(engine).await;
        let org = app.org("E08000003", "local-authority").await;
        let admin = app.token(&org, Role::OrgAdmin).await;
        let body = [
            r#"{"local_ref": "N-1", "category": "child-in-need", "status": "open", "subject": {"nhs_number": "9074833780"}}"#,
            "",
            r#"{"local_ref": "N-2", "category": "other", "status": "open", "subject": {"given_name": "Li", "family_name": "Wei", "date_of_birth": "2018-08-08"}, "contact": {"team": "Early Help Hub"}}"#,
            r#"{"local_ref": "N-3", "category": "other", "status": "open", "subject": {"nhs_number": 9074833780}}"#,
            r#"not json at all"#,
        ]
        .join("\n");
        let (status, s) = app.sync(&admin, "application/x-ndjson", body, "").await;
        assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
        assert_eq!(s["added"], 2, "{s}");
        let rejected = s["rejected"].as_array().unwrap();
        assert_eq!(rejected.len(), 2);
        assert_eq!(
            (rejected[0]["line"].as_u64(), rejected[0]["field"].as_str()),
            (Some(4), Some("subject.nhs_number"))
        );
        assert_eq!(rejected[1]["line"], 5);
        assert_eq!(app.get(&admin, "/api/v1/holdings/N-2").await.1["contact"]["team"], "Early Help Hub");
    }
}

#[tokio::test]
async fn a_dry_run_counts_without_writing() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, BEN]), "?dry_run=true").await;
    assert_eq!((s["added"].as_u64(), s["dry_run"].as_bool()), (Some(2), Some(true)));
    assert_eq!(app.get(&admin, "/api/v1/holdings/R-1").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unreadable_files_are_refused_cleanly() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (status, body) = app.sync(&admin, "application/pdf", caseload(&[AMY]), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (StatusCode::BAD_REQUEST, Some("unsupported_media_type")));
    let (status, body) = app.sync(&admin, "text/csv", "Amy,Okafor,2015-06-01\n".into(), "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["field"], "header");
    assert!(!body.to_string().contains("Okafor"), "a headerless file's data is not echoed");
    let (status, body) = app.sync(&admin, "text/csv", "local_ref,category\nA,\"unterminated\n".into(), "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert!(
        !rejected.is_empty() && rejected.iter().all(|r| r["line"] == 2),
        "every problem of the row, on its line: {body}"
    );
}

#[tokio::test]
async fn a_duplicate_local_ref_in_one_file_is_rejected_with_its_line() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, AMY]), "").await;
    assert_eq!(s["added"], 1);
    assert_eq!(s["rejected"][0]["line"], 3);
    assert!(s["rejected"][0]["message"].as_str().unwrap().contains("line 2"));
}

#[tokio::test]
async fn a_sync_signals_matches_to_both_organisations_and_withdraws_them() {
    for engine in engines() {
        let app = TestApp::start(engine).await;
        let a = app.org("A1", "local-authority").await;
        let b = app.org("B1", "nhs-trust").await;
        let a_admin = app.token(&a, Role::OrgAdmin).await;
        let b_admin = app.token(&b, Role::OrgAdmin).await;
        app.sync(&a_admin, "text/csv", caseload(&[AMY, BEN]), "").await;
        let (_, s) =
            app.sync(&b_admin, "text/csv", caseload(&["H-9,other,open,9074833780,,Amy,Okafor,2015-06-01,"]), "").await;
        assert_eq!(s["matches_new"], 1, "{engine:?}: {s}");
        let (_, view) = app.get(&a_admin, "/api/v1/matches").await;
        assert_eq!(view["matches"][0]["local_ref"], "R-1");
        assert_eq!(view["matches"][0]["tier"], "confirmed");
        let (_, s) = app.sync(&b_admin, "text/csv", caseload(&[]), "").await;
        assert_eq!((s["removed"].as_u64(), s["matches_withdrawn"].as_u64()), (Some(1), Some(1)));
        assert!(app.get(&a_admin, "/api/v1/matches").await.1["matches"].as_array().unwrap().is_empty());
    }
}

/// Removing holdings withdraws their matches a few hundred holdings a transaction, not one
/// commit a match: 450 holdings (more than one chunk) must each lose every match, and each
/// withdrawal must reach both organisations and the audit trail.
#[tokio::test]
async fn a_sync_that_removes_hundreds_of_matched_holdings_withdraws_every_match() {
    let letter = |n: usize| char::from(b'a' + (n % 26) as u8);
    let children: Vec<String> = (0..450)
        .map(|i| {
            let family = format!("Ok{}{}", letter(i / 26), letter(i));
            format!("{},2010-{:02}-{:02}", family, 1 + (i / 28) % 12, 1 + i % 28)
        })
        .collect();
    for engine in engines() {
        let app = TestApp::start(engine).await;
        let a = app.org("A1", "local-authority").await;
        let b = app.org("B1", "local-authority").await;
        let a_admin = app.token(&a, Role::OrgAdmin).await;
        let b_admin = app.token(&b, Role::OrgAdmin).await;
        let rows = |prefix: &str| -> Vec<String> {
            children.iter().enumerate().map(|(i, c)| format!("{prefix}-{i},other,open,,,Amy,{c},")).collect()
        };
        let (a_rows, b_rows) = (rows("A"), rows("B"));
        app.sync(&a_admin, "text/csv", caseload(&a_rows.iter().map(String::as_str).collect::<Vec<_>>()), "").await;
        let (_, s) =
            app.sync(&b_admin, "text/csv", caseload(&b_rows.iter().map(String::as_str).collect::<Vec<_>>()), "").await;
        let signalled = s["matches_new"].as_u64().unwrap();
        assert!(signalled >= 450, "{engine:?}: every child matched its namesake: {s}");

        let (_, s) = app.sync(&a_admin, "text/csv", caseload(&[]), "").await;
        assert_eq!(
            (s["removed"].as_u64(), s["matches_withdrawn"].as_u64()),
            (Some(450), Some(signalled)),
            "{engine:?}"
        );
        for token in [&a_admin, &b_admin] {
            let (_, view) = app.get(token, "/api/v1/matches").await;
            assert!(view["matches"].as_array().unwrap().is_empty(), "{engine:?}: {view}");
        }
        let audited = app.audit_types().await.iter().filter(|t| *t == "match_withdrawn").count();
        assert_eq!(audited as u64, signalled, "{engine:?}: one audit event a withdrawn match");
    }
}

/// Signalling during a sync asks the database only what the node's prefilter may hold; the
/// filter must take in what another node wrote since it was built, or a match is missed.
#[tokio::test]
async fn a_sync_signals_a_match_with_a_holding_another_node_wrote_after_this_node_built_its_filter() {
    use child_locator::clock::Clock;
    use child_locator::domain::sync::SyncFormat;
    use child_locator::service::Service;

    for engine in engines() {
        let app = TestApp::start(engine).await;
        let north = app.org("E08000003", "local-authority").await;
        let south = app.org("E06000010", "local-authority").await;
        let south_admin = app.token(&south, Role::OrgAdmin).await;
        // This node's filter is built (by its first sync) while the index knows nothing of Amy.
        let (_, s) = app.sync(&south_admin, "text/csv", caseload(&[BEN]), "").await;
        assert_eq!(s["added"], 1, "{engine:?}: {s}");

        let (other_node, _task) =
            Service::open(app.db.settings(), Clock::manual(app.clock.now_ms() + 5_000)).await.expect("second node");
        let file = caseload(&[AMY]);
        let written = other_node
            .sync_holdings(
                north.id,
                None,
                SyncFormat::Csv,
                std::io::Cursor::new(file.into_bytes()),
                Default::default(),
                &|_| {},
            )
            .await
            .expect("the other node syncs");
        assert_eq!((written.added, written.matches_new), (1, 0));

        app.clock.advance_ms(10_000);
        let amy_at_south = AMY.replace("R-1,", "S-9,");
        let (_, s) = app.sync(&south_admin, "text/csv", caseload(&[BEN, &amy_at_south]), "").await;
        assert_eq!(s["matches_new"], 1, "{engine:?}: the other node's holding was not signalled: {s}");
        let (_, view) = app.get(&south_admin, "/api/v1/matches").await;
        assert_eq!(view["matches"][0]["local_ref"], "S-9", "{view}");
    }
}
