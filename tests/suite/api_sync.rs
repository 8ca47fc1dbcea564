//! Full-replace caseload sync, CSV and NDJSON, through the HTTP API on every engine.

use crate::common;
use crate::common::Engine;
#[path = "../../examples/shared/names.rs"]
mod names;

use child_locator::audit::leaf::{Sealed, scope_value};
use child_locator::domain::role::Role;
use common::TestApp;
use names::{FAMILY, GIVEN};
use reqwest::StatusCode;
use serde_json::json;

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

#[suite::test(each_engine)]
async fn a_csv_sync_adds_then_is_idempotent_then_replaces(engine: Engine) {
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

#[suite::test(each_engine)]
async fn coverage_counts_follow_every_add_and_removal_without_counting_the_table(engine: Engine) {
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

#[suite::test(each_engine)]
async fn an_ndjson_sync_takes_one_holding_per_line(engine: Engine) {
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
    assert_eq!((rejected[0]["line"].as_u64(), rejected[0]["field"].as_str()), (Some(4), Some("subject.nhs_number")));
    assert_eq!(rejected[1]["line"], 5);
    assert_eq!(app.get(&admin, "/api/v1/holdings/N-2").await.1["contact"]["team"], "Early Help Hub");
}

#[suite::test]
async fn a_dry_run_counts_without_writing() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, BEN]), "?dry_run=true").await;
    assert_eq!((s["added"].as_u64(), s["dry_run"].as_bool()), (Some(2), Some(true)));
    assert_eq!(app.get(&admin, "/api/v1/holdings/R-1").await.0, StatusCode::NOT_FOUND);
}

#[suite::test]
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

#[suite::test]
async fn a_duplicate_local_ref_in_one_file_is_rejected_with_its_line() {
    let app = TestApp::start(common::Engine::Sqlite).await;
    let org = app.org("E1", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (_, s) = app.sync(&admin, "text/csv", caseload(&[AMY, AMY]), "").await;
    assert_eq!(s["added"], 1);
    assert_eq!(s["rejected"][0]["line"], 3);
    assert!(s["rejected"][0]["message"].as_str().unwrap().contains("line 2"));
}

#[suite::test(each_engine)]
async fn a_sync_signals_matches_to_both_organisations_and_withdraws_them(engine: Engine) {
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

/// A re-sync that rewrites holdings withdraws only the matches their new details no longer make,
/// read for the whole batch at once (`Store::withdraw_unkept_matches`): one record now describes
/// another child (its match goes), one has a new contact (its match stays, the same match), one is
/// as it was.
#[suite::test(each_engine)]
async fn a_re_sync_withdraws_the_matches_of_rewritten_records_that_no_longer_describe_the_child(engine: Engine) {
    let app = TestApp::start(engine).await;
    let a = app.org("A1", "local-authority").await;
    let b = app.org("B1", "nhs-trust").await;
    let a_admin = app.token(&a, Role::OrgAdmin).await;
    let b_admin = app.token(&b, Role::OrgAdmin).await;
    app.sync(&a_admin, "text/csv", caseload(&[AMY, BEN, CARA]), "").await;
    let held = [
        "H-1,other,open,9074833780,,Amy,Okafor,2015-06-01,",
        "H-2,other,open,,,Ben,Kowalski,2019-11-23,M2 3BB",
        "H-3,other,open,8762328603,,Cara,Singh-Patel,2012-01-30,",
    ];
    let (_, s) = app.sync(&b_admin, "text/csv", caseload(&held), "").await;
    assert_eq!(s["matches_new"], 3, "{engine:?}: {s}");
    let match_of = |view: serde_json::Value, local_ref: &str| {
        let matches = view["matches"].as_array().cloned().unwrap_or_default();
        matches.into_iter().find(|m| m["local_ref"] == local_ref).map(|m| m["match_id"].clone())
    };
    let view = app.get(&b_admin, "/api/v1/matches").await.1;
    let (ben_match, cara_match) = (match_of(view.clone(), "H-2"), match_of(view, "H-3"));

    let another_child = "H-1,other,open,,,Olwen,Brightwater,2011-09-02,";
    let new_contact = "H-2,child-in-need,open,,,Ben,Kowalski,2019-11-23,M2 3BB";
    let (_, s) = app.sync(&b_admin, "text/csv", caseload(&[another_child, new_contact, held[2]]), "").await;
    assert_eq!((s["updated"].as_u64(), s["unchanged"].as_u64()), (Some(2), Some(1)), "{engine:?}: {s}");
    assert_eq!((s["matches_withdrawn"].as_u64(), s["matches_new"].as_u64()), (Some(1), Some(0)), "{engine:?}: {s}");
    let view = app.get(&b_admin, "/api/v1/matches").await.1;
    assert_eq!(match_of(view.clone(), "H-1"), None, "{engine:?}: {view}");
    assert_eq!(match_of(view.clone(), "H-2"), ben_match, "{engine:?}: kept, not withdrawn and made again");
    assert_eq!(match_of(view, "H-3"), cara_match);
    let withdrawn = app.audit_types().await.iter().filter(|t| *t == "match_withdrawn").count();
    assert_eq!(withdrawn, 1, "{engine:?}: one event for the one match withdrawn");
}

/// Removing holdings withdraws their matches a few hundred holdings a transaction, not one
/// commit a match: 450 holdings (more than one chunk) must each lose every match, and each
/// withdrawal must reach both organisations and the audit trail.
#[suite::test(each_engine)]
async fn a_sync_that_removes_hundreds_of_matched_holdings_withdraws_every_match(engine: Engine) {
    let letter = |n: usize| char::from(b'a' + (n % 26) as u8);
    let children: Vec<String> = (0..450)
        .map(|i| {
            let family = format!("Ok{}{}", letter(i / 26), letter(i));
            format!("{},2010-{:02}-{:02}", family, 1 + (i / 28) % 12, 1 + i % 28)
        })
        .collect();
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
    assert_eq!((s["removed"].as_u64(), s["matches_withdrawn"].as_u64()), (Some(450), Some(signalled)), "{engine:?}");
    for token in [&a_admin, &b_admin] {
        let (_, view) = app.get(token, "/api/v1/matches").await;
        assert!(view["matches"].as_array().unwrap().is_empty(), "{engine:?}: {view}");
    }
    let audited = app.audit_types().await.iter().filter(|t| *t == "match_withdrawn").count();
    assert_eq!(audited as u64, signalled, "{engine:?}: one audit event a withdrawn match");
}

/// Signalling during a sync asks the database only what the node's prefilter may hold; the
/// filter must take in what another node wrote since it was built, or a match is missed.
#[suite::test(each_engine)]
async fn a_sync_signals_a_match_with_a_holding_another_node_wrote_after_this_node_built_its_filter(engine: Engine) {
    use child_locator::clock::Clock;
    use child_locator::domain::sync::SyncFormat;
    use child_locator::service::Service;

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

/// A command-line import has no serving node's filter: it builds one before its first write, so
/// each of its records' own keys is in it once. A key only the record itself carries is not
/// asked (it could only find the record); one another organisation holds too is, and matches.
#[suite::test(each_engine)]
async fn an_import_asks_its_own_keys_only_where_another_organisation_holds_them_too(engine: Engine) {
    use child_locator::clock::Clock;
    use child_locator::domain::sync::SyncFormat;
    use child_locator::service::Service;

    let app = TestApp::start(engine).await;
    let north = app.org("E08000003", "local-authority").await;
    let south = app.org("E06000010", "local-authority").await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let (_, s) = app.sync(&south_admin, "text/csv", caseload(&[&AMY.replace("R-1,", "S-1,")]), "").await;
    assert_eq!(s["added"], 1, "{engine:?}: {s}");

    let (import, _task) =
        Service::open(app.db.settings(), Clock::manual(app.clock.now_ms() + 5_000)).await.expect("an import's service");
    let written = import
        .sync_holdings(
            north.id,
            None,
            SyncFormat::Csv,
            std::io::Cursor::new(caseload(&[AMY, BEN, CARA]).into_bytes()),
            Default::default(),
            &|_| {},
        )
        .await
        .expect("the import");
    assert_eq!((written.added, written.matches_new), (3, 1), "{engine:?}: Amy is held at both: {written:?}");
    let filter = import.prefilter_for_tests();
    let own = |subject: serde_json::Value| {
        let input: child_locator::domain::holding::HoldingInput =
            serde_json::from_value(json!({"category": "early-help", "status": "open", "subject": subject})).unwrap();
        let today = time::OffsetDateTime::now_utc().date();
        input.into_holding("X", import.keyring_for_tests(), today).expect("valid").keys
    };
    let amy = json!({"nhs_number": "9074833780", "given_name": "Amy", "family_name": "Okafor",
        "date_of_birth": "2015-06-01", "postcode": "M1 1AE"});
    let ben =
        json!({"given_name": "Ben", "family_name": "Kowalski", "date_of_birth": "2019-11-23", "postcode": "M2 3BB"});
    assert!(
        own(amy).iter().any(|k| filter.may_be_shared(k.pseudonym.index_key())),
        "{engine:?}: Amy's keys are held twice"
    );
    let alone = own(ben).iter().filter(|k| filter.may_be_shared(k.pseudonym.index_key())).count();
    assert_eq!(alone, 0, "{engine:?}: none of Ben's keys is asked: only his own record carries them");
}

/// An import whose first signalling refresh met a flood (another organisation wrote more keys in
/// the last minute than a refresh counts as small) gave up and left its filter's window where
/// it was, so every later refresh met the same flood and its batches were never screened again
/// (org1-3 of the million-holding bench ran 150-255 s). Now the flood is taken in once and the
/// window moves on, and what it read still finds the matches.
#[suite::test(each_engine)]
async fn an_import_that_meets_a_flood_of_other_writes_takes_it_in_and_moves_on(engine: Engine) {
    use child_locator::clock::Clock;
    use child_locator::domain::sync::SyncFormat;
    use child_locator::service::Service;

    let app = TestApp::start(engine).await;
    let north = app.org("E08000003", "local-authority").await;
    let south = app.org("E06000010", "local-authority").await;
    let south_admin = app.token(&south, Role::OrgAdmin).await;
    let (amy_south, ben_south) = (AMY.replace("R-1,", "S-1,"), BEN.replace("R-2,", "S-2,"));
    app.sync(&south_admin, "text/csv", caseload(&[&amy_south]), "").await;

    let clock = Clock::manual(app.clock.now_ms() + 5_000);
    let (import, _task) = Service::open(app.db.settings(), clock.clone()).await.expect("an import's service");
    import.prefilter_for_tests().set_large_refresh_for_tests(1);
    let run = |rows: &'static [&'static str]| {
        let import = &import;
        async move {
            let file = std::io::Cursor::new(caseload(rows).into_bytes());
            let sync = import.sync_holdings(north.id, None, SyncFormat::Csv, file, Default::default(), &|_| {});
            sync.await.expect("the import")
        }
    };
    let first = run(&[AMY]).await;
    assert_eq!(first.matches_new, 1, "{engine:?}: the flood held Amy: {first:?}");

    // A minute on (past the back-off after a large refresh), south writes again and north imports again.
    app.clock.advance_ms(60_000);
    app.sync(&south_admin, "text/csv", caseload(&[&amy_south, &ben_south]), "").await;
    clock.advance_ms(60_000);
    let second = run(&[AMY, BEN]).await;
    assert_eq!(second.matches_new, 1, "{engine:?}: Ben is held at both: {second:?}");
    let (_, complete_as_of) = import.prefilter_for_tests().completeness().expect("the import's filter");
    assert_eq!(complete_as_of, clock.now_ms(), "{engine:?}: the window moved past the flood");
}

/// `days` dates of birth, one a day from 2014-01-01 (a 28-day month is enough to be distinct).
fn every_date_of_birth(days: u32) -> Vec<String> {
    (0..days).map(|d| format!("{}-{:02}-{:02}", 2014 + d / 336, 1 + (d / 28) % 12, 1 + d % 28)).collect()
}

/// Issue 20, item 4: one sync of 3,652 rows, one name and every date of birth in ten years, was
/// an oracle: the matches then named the organisation holding the real child. Now the file is
/// stopped at the row that gives it away, nothing of it is matched, and it is flagged to the
/// organisation's IG officer and the national operator's.
#[suite::test(each_engine)]
async fn a_sync_guessing_one_childs_date_of_birth_is_stopped_flagged_and_matches_nothing(engine: Engine) {
    let app = TestApp::start(engine).await;
    let holder = app.org("E08000011", "local-authority").await;
    let guesser = app.org("E08000012", "local-authority").await;
    let national = app.org("NATIONAL", "other").await;
    app.token(&national, Role::Operator).await;
    let national_ig = app.token(&national, Role::IgOfficer).await;
    let guesser_ig = app.token(&guesser, Role::IgOfficer).await;
    let holder_admin = app.token(&holder, Role::OrgAdmin).await;
    let guesser_admin = app.token(&guesser, Role::OrgAdmin).await;
    let real = serde_json::json!({"category": "child-in-need", "status": "open",
        "subject": {"given_name": "Amelia", "family_name": "Hughes", "date_of_birth": "2016-03-14"}});
    assert_eq!(app.put(&holder_admin, "/api/v1/holdings/REAL-1", &real).await.0, StatusCode::CREATED);

    let dobs = every_date_of_birth(3652);
    assert!(dobs.contains(&"2016-03-14".to_string()));
    let rows: Vec<String> =
        dobs.iter().enumerate().map(|(i, dob)| format!("G-{i},other,open,,,Amelia,Hughes,{dob},")).collect();
    let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (status, answer) = app.sync(&guesser_admin, "text/csv", caseload(&rows), "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{engine:?}: {answer}");
    assert_eq!(answer["error"]["code"], "looks_like_enumeration");
    assert_eq!(answer["error"]["field"], "given_name");

    for token in [&guesser_admin, &holder_admin] {
        let (_, matches) = app.get(token, "/api/v1/matches").await;
        assert_eq!(matches["matches"].as_array().unwrap().len(), 0, "{engine:?}: {matches}");
    }
    for ig in [&guesser_ig, &national_ig] {
        let (status, events) = app.get(ig, "/api/v1/audit/events?type=sync_flagged").await;
        assert_eq!(status, StatusCode::OK);
        let events = events["events"].as_array().unwrap();
        assert_eq!(events.len(), 1, "{engine:?}: {events:?}");
        let text = events[0].to_string();
        assert!(!text.contains("Amelia") && !text.contains("Hughes"), "no name in the trail: {text}");
    }
    app.assert_db_files_free_of(&["Amelia", "Hughes"]);
}

/// A caseload shaped like the tests' generator (examples/gen_caseload.rs and its names: uniform
/// names from its lists) is not mistaken for guessing, first load or re-sync.
#[suite::test(each_engine)]
async fn a_realistic_caseload_is_not_mistaken_for_guessing(engine: Engine) {
    let mut seed = 0x5eed_1234_abcd_9876u64;
    let mut next = move |n: usize| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    };
    let rows: Vec<String> = (0..5000)
        .map(|i| {
            let (g, f) = (GIVEN[next(GIVEN.len())], FAMILY[next(FAMILY.len())]);
            let dob = format!("{}-{:02}-{:02}", 2010 + next(16), 1 + next(12), 1 + next(28));
            format!("R{i},child-in-need,open,,,{g},{f},{dob},")
        })
        .collect();
    let app = TestApp::start(engine).await;
    let org = app.org("E08000013", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let first: Vec<&str> = rows.iter().map(String::as_str).collect();
    let (status, s) = app.sync(&admin, "text/csv", caseload(&first), "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
    assert_eq!(s["added"], 5000, "{engine:?}");
    // The next day's file: 4% of the records closed and replaced by new ones.
    let mut second: Vec<String> = rows[200..].to_vec();
    second.extend(rows[..200].iter().map(|r| r.replacen('R', "N", 1)));
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let (status, s) = app.sync(&admin, "text/csv", caseload(&second), "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
    assert_eq!((s["added"].as_u64(), s["removed"].as_u64()), (Some(200), Some(200)), "{s}");
    assert!(!app.audit_types().await.iter().any(|t| t == "sync_flagged" || t == "rate_limited"), "{engine:?}");
}

/// Issue 20, item 4: across syncs and single PUTs, the holdings an organisation adds and removes
/// in a day are bounded; past the allowance, adding waits for midnight (429) and the day is
/// flagged, while updating and removing records still work.
#[suite::test(each_engine)]
async fn past_the_daily_churn_allowance_adding_holdings_waits_for_midnight(engine: Engine) {
    let app = TestApp::start_with(engine, |s| s.limits.holdings_churn_floor = 10).await;
    let org = app.org("E08000014", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let ig = app.token(&org, Role::IgOfficer).await;
    let dobs = every_date_of_birth(40);
    // Letters only: a name with digits is rejected.
    let letters = |i: usize| i.to_string().chars().map(|d| char::from(b'a' + d as u8 - b'0')).collect::<String>();
    let row = |prefix: &str, i: usize| {
        format!("{prefix}{i},other,open,,,Name{},Family{},{},", letters(i), letters(i), dobs[i])
    };
    let first: Vec<String> = (0..20).map(|i| row("A", i)).collect();
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let (status, s) = app.sync(&admin, "text/csv", caseload(&first), "").await;
    assert_eq!((status, s["added"].as_u64()), (StatusCode::OK, Some(20)), "a first load is free: {s}");
    // Six swapped: 6 removed + 6 added reaches the allowance of 10.
    let mut second: Vec<String> = (6..20).map(|i| row("A", i)).collect();
    second.extend((20..26).map(|i| row("B", i)));
    let second: Vec<&str> = second.iter().map(String::as_str).collect();
    let (status, s) = app.sync(&admin, "text/csv", caseload(&second), "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
    assert_eq!((s["added"].as_u64(), s["removed"].as_u64()), (Some(6), Some(6)), "{s}");
    let (_, flagged) = app.get(&ig, "/api/v1/audit/events?type=sync_flagged").await;
    assert_eq!(flagged["events"].as_array().unwrap().len(), 1, "{engine:?}: {flagged}");

    let response = app
        .http
        .post(app.url("/api/v1/holdings/sync"))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(caseload(&second))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{engine:?}");
    assert!(response.headers().contains_key("retry-after"));
    let new = serde_json::json!({"category": "other", "status": "open",
        "subject": {"given_name": "New", "family_name": "Child", "date_of_birth": "2015-01-01"}});
    assert_eq!(app.put(&admin, "/api/v1/holdings/NEW-1", &new).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.put(&admin, "/api/v1/holdings/A6", &new).await.0, StatusCode::OK, "an update is not churn");
    assert_eq!(app.delete(&admin, "/api/v1/holdings/A7").await.0, StatusCode::NO_CONTENT, "removal always works");

    app.clock.advance_ms(86_400_000);
    assert_eq!(app.put(&admin, "/api/v1/holdings/NEW-1", &new).await.0, StatusCode::CREATED, "{engine:?}");
}

/// Rows of a valid caseload, `R{prefix}-{i}`: distinct children with letter-only names.
fn many_rows(prefix: &str, count: usize) -> Vec<String> {
    let letters = |mut n: usize| {
        let mut s = String::new();
        for _ in 0..4 {
            s.push(char::from(b'a' + (n % 26) as u8));
            n /= 26;
        }
        s
    };
    (0..count)
        .map(|i| format!("{prefix}-{i},other,open,,,Amy,Sync{}{},2014-03-{:02},", letters(i), prefix, 1 + i % 28))
        .collect()
}

/// A file the test hands to a sync a piece at a time, so the sync is held open in between.
struct Feed {
    pieces: std::sync::mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    at: usize,
}

impl std::io::Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.current.len() {
            match self.pieces.recv() {
                Ok(piece) => (self.current, self.at) = (piece, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.at);
        buf[..n].copy_from_slice(&self.current[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn feed() -> (std::sync::mpsc::Sender<Vec<u8>>, Feed) {
    let (send, pieces) = std::sync::mpsc::channel();
    (send, Feed { pieces, current: Vec::new(), at: 0 })
}

/// Waits (up to 10 s) until the audit trail holds `count` events of `kind`; fails if it never does.
async fn wait_for_events(app: &TestApp, kind: &str, count: usize) {
    for _ in 0..100 {
        if app.audit_types().await.iter().filter(|t| *t == kind).count() >= count {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the trail never held {count} `{kind}` events");
}

async fn holdings_of(app: &TestApp, token: &str, refs: &[String]) -> usize {
    let mut found = 0;
    for r in refs {
        let local_ref = r.split(',').next().unwrap();
        if app.get(token, &format!("/api/v1/holdings/{local_ref}")).await.0 == StatusCode::OK {
            found += 1;
        }
    }
    found
}

/// Two full syncs of one organisation at once (here `locator import`'s path, held open
/// mid-file, and the API): the second is refused with 409 and changes nothing, and the
/// caseload ends as the file of the one that ran, with true removal counts.
#[suite::test(each_engine, multi_thread)]
async fn a_second_sync_of_one_organisation_while_one_runs_is_refused_and_the_first_file_wins(engine: Engine) {
    use child_locator::domain::sync::SyncFormat;
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (before, first, second) = (many_rows("C", 30), many_rows("A", 40), many_rows("B", 40));
    let (status, s) =
        app.sync(&admin, "text/csv", caseload(&before.iter().map(String::as_str).collect::<Vec<_>>()), "").await;
    assert_eq!((status, s["added"].as_u64()), (StatusCode::OK, Some(30)), "{engine:?}: {s}");

    let (send, file) = feed();
    let (state, org_id) = (app.state.clone(), org.id);
    let running = tokio::spawn(async move {
        state.sync_holdings(org_id, None, SyncFormat::Csv, file, Default::default(), &|_| {}).await
    });
    send.send(format!("{HEADER}\n{}\n", first[..20].join("\n")).into_bytes()).unwrap();
    // The first sync (of `before`) started one; this one holds the lease once it has its own.
    wait_for_events(&app, "sync_started", 2).await;

    let other = caseload(&second.iter().map(String::as_str).collect::<Vec<_>>());
    let (status, body) = app.sync(&admin, "text/csv", other, "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: a second sync while one runs: {body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("already running"), "{body}");

    send.send(format!("{}\n", first[20..].join("\n")).into_bytes()).unwrap();
    drop(send);
    let summary = running.await.unwrap().expect("the first sync finishes");
    assert_eq!((summary.added, summary.removed), (40, 30), "{engine:?}: true counts");
    assert_eq!(holdings_of(&app, &admin, &first).await, 40, "{engine:?}: the file that ran");
    assert_eq!(holdings_of(&app, &admin, &second).await, 0, "{engine:?}: nothing of the refused file");
    assert_eq!(holdings_of(&app, &admin, &before).await, 0, "{engine:?}");
    assert_eq!(app.store().coverage().await.unwrap().0, 40, "{engine:?}");

    // Once it has finished, the organisation can sync again.
    let (status, s) = app.sync(&admin, "text/csv", caseload(&[AMY]), "").await;
    assert_eq!((status, s["removed"].as_u64()), (StatusCode::OK, Some(40)), "{engine:?}: {s}");
}

/// A sync whose process dies holds its organisation only until its lease expires; then the
/// next sync runs, and the trail accounts for what the dead one committed.
#[suite::test(each_engine, multi_thread)]
async fn a_sync_that_dies_mid_file_is_accounted_for_and_its_lease_expires(engine: Engine) {
    use child_locator::domain::sync::SyncFormat;
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let rows = many_rows("D", 5_200);

    let (send, file) = feed();
    let (state, org_id) = (app.state.clone(), org.id);
    let dying = tokio::spawn(async move {
        state.sync_holdings(org_id, None, SyncFormat::Csv, file, Default::default(), &|_| {}).await
    });
    // One batch (5,000 rows) and a little more, then the upload stalls: the batch is committed.
    send.send(format!("{HEADER}\n{}\n", rows.join("\n")).into_bytes()).unwrap();
    let mut committed = 0;
    for _ in 0..600 {
        committed = app.store().coverage().await.unwrap().0;
        if committed >= 5_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(committed, 5_000, "{engine:?}: the first batch is committed while the upload stalls");
    // The process dies: the sync stops where it is, with no end of its own.
    dying.abort();
    let _ = dying.await;
    drop(send);

    let (status, body) = app.sync(&admin, "text/csv", caseload(&[AMY]), "").await;
    assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: the lease is still live: {body}");
    app.clock.advance_ms(61_000);
    let (status, s) = app.sync(&admin, "text/csv", caseload(&[AMY]), "").await;
    assert_eq!((status, s["removed"].as_u64()), (StatusCode::OK, Some(5_000)), "{engine:?}: {s}");

    let bodies = app.audit_bodies().await;
    let of = |kind: &str| bodies.iter().filter(|b| b["type"] == kind).cloned().collect::<Vec<_>>();
    let (started, interrupted, finished) = (of("sync_started"), of("sync_interrupted"), of("sync_run"));
    assert_eq!((started.len(), interrupted.len(), finished.len()), (2, 1, 1), "{engine:?}");
    let dead_run = &started[0]["details"]["run_id"];
    assert_eq!(&interrupted[0]["details"]["run_id"], dead_run, "{engine:?}");
    assert_eq!(interrupted[0]["details"]["added"], 5_000, "{engine:?}: what it committed: {}", interrupted[0]);
    assert_eq!(finished[0]["details"]["run_id"], started[1]["details"]["run_id"]);
    // The scope is committed to (leaf format v2): the organisation's own commitment is in it.
    let seq = interrupted[0]["seq"].as_u64().unwrap();
    let ours = app.state.leaf_key_for_tests().commit(Sealed::Scope, seq, &scope_value(org.id));
    assert_eq!(interrupted[0]["scope"], serde_json::json!([ours]), "{engine:?}");
}

/// A file of 200,000 bad lines answers with the first 1,000 problems and the true count, not
/// a response (and a server) the size of the file.
#[suite::test(each_engine)]
async fn a_file_of_bad_lines_answers_with_a_capped_list_and_the_true_count(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let body = "{}\n".repeat(200_000);
    let (status, s) = app.sync(&admin, "application/x-ndjson", body, "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}");
    let rejected = s["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1_000, "{engine:?}: the list is capped");
    assert_eq!(s["rejected_count"], 200_000, "{engine:?}: the count is true");
    assert_eq!((rejected[0]["line"].as_u64(), rejected[999]["line"].as_u64()), (Some(1), Some(1_000)));
    assert_eq!(rejected[0]["field"], "local_ref");
    assert_eq!(s["lines"], 200_000);
}

/// A row longer than a row may be is rejected by its line, and the rows after it are read.
#[suite::test(each_engine)]
async fn an_over_long_row_is_rejected_by_its_line_and_the_rest_read(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let long = format!("R-9,other,open,,,{},Okafor,2015-06-01,", "A".repeat(200_000));
    let (status, s) = app.sync(&admin, "text/csv", caseload(&[AMY, &long, BEN]), "").await;
    assert_eq!((status, s["added"].as_u64()), (StatusCode::OK, Some(2)), "{engine:?}: {s}");
    assert_eq!(s["rejected"][0]["line"], 3, "{s}");
    assert_eq!(s["rejected"][0]["field"], "line", "{s}");
    let long = format!(
        r#"{{"local_ref": "N-1", "category": "other", "status": "open", "subject": {{"given_name": "{}"}}}}"#,
        "A".repeat(200_000)
    );
    let (status, s) = app.sync(&admin, "application/x-ndjson", format!("{long}\n{{}}\n"), "").await;
    assert_eq!(status, StatusCode::OK, "{engine:?}: {s}");
    assert_eq!((s["rejected"][0]["line"].as_u64(), s["rejected"][0]["field"].as_str()), (Some(1), Some("line")));
    assert_eq!(s["rejected"][1]["line"], 2, "{s}");
}

/// The reported attack: two different files sent at once by one organisation. Exactly one
/// runs (200) and the other is refused (409); the caseload is the file that ran, never the
/// union nor nothing.
#[suite::test(each_engine, multi_thread)]
async fn two_syncs_sent_at_once_leave_the_caseload_of_the_one_that_ran(engine: Engine) {
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (first, second) = (many_rows("F", 2_000), many_rows("G", 2_000));
    let file = |rows: &[String]| caseload(&rows.iter().map(String::as_str).collect::<Vec<_>>());
    let ((status_f, body_f), (status_g, body_g)) =
        tokio::join!(app.sync(&admin, "text/csv", file(&first), ""), app.sync(&admin, "text/csv", file(&second), ""));
    let mut statuses = [status_f, status_g];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{engine:?}: {body_f} {body_g}");
    let (ran, refused) = if status_f == StatusCode::OK { (&first, &second) } else { (&second, &first) };
    assert_eq!(app.store().coverage().await.unwrap().0, 2_000, "{engine:?}: neither the union nor nothing");
    assert_eq!(holdings_of(&app, &admin, &ran[..50]).await, 50, "{engine:?}");
    assert_eq!(holdings_of(&app, &admin, &refused[..50]).await, 0, "{engine:?}");
}

/// The fence: a sync whose lease was taken over (it stalled past its expiry) cannot commit
/// another row; the sync that holds the lease can.
#[suite::test(each_engine)]
async fn a_sync_that_lost_its_lease_commits_nothing_more(engine: Engine) {
    use child_locator::domain::holding::HoldingInput;
    use child_locator::store::sync_leases::LeaseRef;
    let app = TestApp::start(engine).await;
    let org = app.org("E08000003", "local-authority").await;
    let store = app.store();
    let now = app.clock.now_ms();
    let (stalled, current) =
        (LeaseRef { org_id: org.id, run_id: "stalled".into() }, LeaseRef { org_id: org.id, run_id: "current".into() });
    assert!(store.take_sync_lease(&stalled, now, now + 1_000).await.unwrap(), "{engine:?}");
    assert!(!store.take_sync_lease(&current, now, now + 1_000).await.unwrap(), "{engine:?}: held");
    // The stalled run's lease expired and was reconciled; another run took the organisation.
    store.release_sync_lease(&stalled).await.unwrap();
    assert!(store.take_sync_lease(&current, now, now + 1_000).await.unwrap(), "{engine:?}");

    let holding = |local_ref: &str| {
        let input: HoldingInput = serde_json::from_value(serde_json::json!({
            "category": "other", "status": "open",
            "subject": {"given_name": "Amy", "family_name": "Fenced", "date_of_birth": "2015-06-01"}}))
        .unwrap();
        input.into_holding(local_ref, app.state.keyring_for_tests(), app.clock.today()).unwrap()
    };
    let key_id = app.state.key_ids().0.to_string();
    for (lease, local_ref, commits) in [(&stalled, "S-1", false), (&current, "C-1", true)] {
        let mut index = store.sync_index(org.id).await.unwrap();
        let mut open = None;
        store.sync_batch(&mut open, org.id, &[holding(local_ref)], &key_id, now, &mut index).await.unwrap();
        let committed = store.commit_sync(open.expect("a transaction"), lease, now + 1_000).await;
        assert_eq!(committed.is_ok(), commits, "{engine:?}: {} {committed:?}", lease.run_id);
    }
    assert_eq!(store.coverage().await.unwrap().0, 1, "{engine:?}: only the current run's row is there");
    let row = store.sync_lease(&current).await.unwrap().expect("the current lease");
    assert_eq!((row.added, row.commits), (1, 1), "{engine:?}: its counts are what it committed");
}

/// A slow upload keeps its lease: it is renewed while the sync runs, so a second sync is
/// refused even after the first lease length has passed.
#[suite::test(each_engine, multi_thread)]
async fn a_slow_upload_keeps_its_lease_by_renewing_it(engine: Engine) {
    use child_locator::domain::sync::SyncFormat;
    let db = common::TestDb::new(engine).await;
    let app = TestApp::start_on(engine, db, |s| s.sync_lease = std::time::Duration::from_millis(400)).await;
    let org = app.org("E08000003", "local-authority").await;
    let admin = app.token(&org, Role::OrgAdmin).await;
    let (send, file) = feed();
    let (state, org_id) = (app.state.clone(), org.id);
    let running = tokio::spawn(async move {
        state.sync_holdings(org_id, None, SyncFormat::Csv, file, Default::default(), &|_| {}).await
    });
    send.send(format!("{HEADER}\n{AMY}\n").into_bytes()).unwrap();
    wait_for_events(&app, "sync_started", 1).await;
    for _ in 0..3 {
        // Past the lease's length, on the service's clock; the renewer runs meanwhile.
        app.clock.advance_ms(1_000);
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let (status, body) = app.sync(&admin, "text/csv", caseload(&[BEN]), "").await;
        assert_eq!(status, StatusCode::CONFLICT, "{engine:?}: the renewed lease holds: {body}");
    }
    drop(send);
    let summary = running.await.unwrap().expect("the slow sync finishes");
    assert_eq!(summary.added, 1, "{engine:?}");
    assert!(!app.audit_types().await.iter().any(|t| t == "sync_interrupted"), "{engine:?}");
}
