//! The suites' shared set-up: the named organisations, the fixture child, an organisation with
//! the tokens a test needs (`org_with`), registering a holding (`register`), and fault injection
//! (`refuse_inserts`). A suite's own `World` is built from these, so each says only what is
//! particular to it.

use child_locator::domain::organisation::Organisation;
use child_locator::domain::role::Role;
use child_locator::store::Store;
use serde_json::{Value, json};

use super::{Engine, TestApp};

/// An organisation the suites refer to by name: its code and kind.
#[derive(Debug, Clone, Copy)]
pub struct Named {
    pub code: &'static str,
    pub kind: &'static str,
}

pub const MANCHESTER: Named = Named { code: "E08000003", kind: "local-authority" };
pub const LEEDS: Named = Named { code: "E08000035", kind: "local-authority" };
pub const YORK: Named = Named { code: "E06000014", kind: "local-authority" };
pub const BRISTOL: Named = Named { code: "E06000023", kind: "local-authority" };

/// The fixture child's NHS number.
pub const AMELIA_NHS: &str = "9074833780";

/// Amelia Hughes, the fixture child: NHS number, names, date of birth and postcode.
pub fn amelia() -> Value {
    json!({"nhs_number": AMELIA_NHS, "given_name": "Amelia", "family_name": "Hughes",
           "date_of_birth": "2014-05-09", "postcode": "M1 1AE"})
}

/// Adds `named` and a user with a token for each of `roles`, in that order:
/// `let (leeds, [worker, ig]) = org_with(&app, LEEDS, [Role::Practitioner, Role::IgOfficer]).await;`
pub async fn org_with<const N: usize>(app: &TestApp, named: Named, roles: [Role; N]) -> (Organisation, [String; N]) {
    let org = app.org(named.code, named.kind).await;
    let mut tokens = Vec::with_capacity(N);
    for role in roles {
        tokens.push(app.token(&org, role).await);
    }
    let tokens = tokens.try_into().unwrap_or_else(|_| unreachable!("one token a role"));
    (org, tokens)
}

/// Registers (or replaces) the holding `local_ref` with `body`, asserting it was accepted; the
/// holding's view.
pub async fn put_holding(app: &TestApp, token: &str, local_ref: &str, body: &Value) -> Value {
    let (status, reply) = app.put(token, &format!("/api/v1/holdings/{local_ref}"), body).await;
    assert!(status.is_success(), "{:?}: {local_ref}: {status} {reply}", app.engine);
    reply
}

/// Registers an open holding of `category` for `subject`.
pub async fn register(app: &TestApp, token: &str, local_ref: &str, category: &str, subject: Value) -> Value {
    put_holding(app, token, local_ref, &json!({"category": category, "status": "open", "subject": subject})).await
}

/// Makes every `change` (`INSERT`, `UPDATE OF column`) on `table` fail from now on, as a full
/// disk, a broken database or a node dying part-way would. On the audit file for `audit_events`
/// (SQLite keeps the trail in a file of its own). `lift` undoes it.
pub async fn refuse(store: &Store, engine: Engine, change: &str, table: &str) {
    let fault = match engine {
        Engine::Sqlite => {
            format!("CREATE TRIGGER refuse BEFORE {change} ON {table} BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
        }
        Engine::Postgres => format!(
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse BEFORE {change} ON {table} FOR EACH ROW EXECUTE FUNCTION refuse();"
        ),
    };
    on(store, table, &fault).await.expect("fault injected");
}

/// `refuse` for inserts.
pub async fn refuse_inserts(store: &Store, engine: Engine, table: &str) {
    refuse(store, engine, "INSERT", table).await;
}

/// Undoes `refuse` on `table`.
pub async fn lift(store: &Store, engine: Engine, table: &str) {
    let repair = match engine {
        Engine::Sqlite => "DROP TRIGGER refuse;".to_string(),
        Engine::Postgres => format!("DROP TRIGGER refuse ON {table}; DROP FUNCTION refuse();"),
    };
    on(store, table, &repair).await.expect("fault lifted");
}

async fn on(store: &Store, table: &str, sql: &str) -> Result<(), child_locator::store::StoreError> {
    if table == "audit_events" { store.execute_raw_on_audit(sql).await } else { store.execute_raw(sql).await }?;
    Ok(())
}

/// Turns every holding into what an older key family wrote: family 1 (before #21) only the
/// canonical keys (the deletion and partial-date kinds, 15 and up, removed), family 2 no key of
/// family 3's kinds (20 and up); `key_family` set to match, and a fingerprint of another family,
/// so the holder's next sync sees each record as changed, as it would.
pub async fn as_key_family(store: &Store, engine: Engine, family: u8) {
    let first_kind_added_since = match family {
        1 => 15,
        2 => 20,
        _ => panic!("no key family {family} before the current one"),
    };
    // Each holding's key list is rebuilt from the keys left. The index keeps a pseudonym's first
    // 8 bytes (migration 0027), and that is all a key list's entry is read for: each entry is
    // those 8 bytes and 8 zero bytes.
    let (other_fingerprint, key_list) = match engine {
        Engine::Sqlite => ("X'00'", "unhex(group_concat(printf('%016X', p.pseudonym) || '0000000000000000', ''))"),
        Engine::Postgres => {
            ("decode('00', 'hex')", "string_agg(int8send(p.pseudonym) || '\\x0000000000000000'::bytea, ''::bytea)")
        }
    };
    let sql = format!(
        "DELETE FROM pseudonyms WHERE kind >= {first_kind_added_since}; \
         UPDATE holdings SET key_family = {family}, fingerprint = {other_fingerprint}, \
         key_list = (SELECT {key_list} FROM pseudonyms p WHERE p.holding_id = holdings.id);"
    );
    store.execute_raw(&sql).await.expect("index turned back to an older key family");
}
