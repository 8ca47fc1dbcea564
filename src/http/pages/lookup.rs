//! The practitioner's lookup: one short form (purpose first, then the child's identifiers; an NHS
//! number may be typed with spaces, a date of birth as day, month and year) and the answer: who
//! to call, how sure the match is in plain words, and a link to request the record.
//!
//! The child's identifiers are one `SubjectForm` under a name prefix. The common case, one child,
//! is one short form; "Add another child" and "Add a parent or carer" (plain submit buttons, no
//! script) bring the form back with another block, and the lookup becomes a family lookup.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};

use super::ui::{self, Input, Select};
use super::{FormPairs, PageError, PageResult, Session, field_errors, respond, see_other};
use crate::domain::FieldError;
use crate::domain::area::AreaCoverage;
use crate::domain::case_ref::parse_case_ref;
use crate::domain::identity::RawSubject;
use crate::domain::lookup::KeptAnswer;
use crate::domain::lookup::{LookupInput, Purpose};
use crate::domain::organisation::OrgKind;
use crate::domain::widen::Widen;
use crate::http::AppState;
use crate::http::access;
use crate::http::error::ApiError;
use crate::http::lookups::{LookupAnswer, MatchAnswer};

/// One person's identifiers as typed, under a prefix ("" for the single child).
#[derive(Debug, Default, Clone)]
pub struct SubjectForm {
    pub prefix: String,
    pub nhs_number: Option<String>,
    /// A school's pupil number (the API's `upn`).
    pub upn: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub dob_day: Option<String>,
    pub dob_month: Option<String>,
    pub dob_year: Option<String>,
    pub postcode: Option<String>,
    /// A block just added: the cursor goes to its first field.
    pub focus: bool,
}

impl SubjectForm {
    pub fn read(form: &FormPairs, prefix: &str) -> SubjectForm {
        let f = |name: &str| form.text(&format!("{prefix}{name}"));
        SubjectForm {
            prefix: prefix.to_string(),
            nhs_number: f("nhs_number"),
            upn: f("upn"),
            given_name: f("given_name"),
            family_name: f("family_name"),
            dob_day: f("dob_day"),
            dob_month: f("dob_month"),
            dob_year: f("dob_year"),
            postcode: f("postcode"),
            focus: false,
        }
    }

    /// The subject for the service, or the date field that is incomplete. A date given in part
    /// is an error here (the service never sees half a date); no date at all is fine.
    pub fn to_raw(&self, field_path: &str) -> Result<RawSubject, FieldError> {
        let parts = [&self.dob_day, &self.dob_month, &self.dob_year];
        let date_of_birth = if parts.iter().all(|p| p.is_none()) {
            None
        } else {
            let number = |p: &Option<String>| p.as_deref().and_then(|t| t.parse::<u32>().ok());
            match (number(&self.dob_day), number(&self.dob_month), number(&self.dob_year)) {
                (Some(d), Some(m), Some(y)) if (1..=31).contains(&d) && (1..=12).contains(&m) && y >= 1000 => {
                    Some(format!("{y:04}-{m:02}-{d:02}"))
                }
                _ => {
                    return Err(FieldError::new(
                        format!("{field_path}.date_of_birth"),
                        "invalid_date",
                        "date of birth must be a real date with a day, month and four-digit year",
                    ));
                }
            }
        };
        Ok(RawSubject {
            nhs_number: self.nhs_number.clone(),
            upn: self.upn.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            date_of_birth,
            postcode: self.postcode.clone(),
            ..RawSubject::default()
        })
    }

    fn id(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Most blocks of each kind the form offers (the service's family limits).
const MAX_CHILDREN: usize = crate::domain::lookup::MAX_FAMILY_CHILDREN;
const MAX_CARERS: usize = crate::domain::lookup::MAX_FAMILY_CARERS;

/// The name prefix of a block: the first child keeps the single-child form's plain names.
fn child_prefix(i: usize) -> String {
    if i == 0 { String::new() } else { format!("child{i}-") }
}

fn carer_prefix(i: usize) -> String {
    format!("carer{i}-")
}

/// Maps a service field (`subject.nhs_number`, `family.carers[0].given_name`) to the input
/// that holds it. Family errors arrive already rewritten to block prefixes (see `submit`).
pub fn field_id(field: &str) -> String {
    let (prefix, leaf) = field.split_once(':').unwrap_or(("", field));
    let leaf = leaf.strip_prefix("subject.").unwrap_or(leaf);
    let id = match leaf {
        "date_of_birth" => "dob_day".into(),
        "subject" => "nhs_number".into(),
        other => other.replace('.', "-"),
    };
    format!("{prefix}{id}")
}

/// The identifier fields of one person. `legend` names whose they are.
pub fn subject_fields(legend: &str, s: &SubjectForm, errors: &[FieldError]) -> Markup {
    let e = |id: &str| ui::error_for(errors, field_id, id);
    let dob_error = e(&s.id("dob_day"));
    html! {
        fieldset class="fieldset" {
            legend class="fieldset-legend" { (legend) }
            (ui::text_input(&Input {
                hint: Some("10 digits, spaces allowed. With an NHS number you need nothing else."),
                value: s.nhs_number.as_deref(),
                error: e(&s.id("nhs_number")),
                inputmode: Some("numeric"),
                width: "input-width-10",
                autofocus: s.focus,
                ..Input::new(&s.id("nhs_number"), "NHS number")
            }))
            (ui::text_input(&Input {
                hint: Some("A school's unique pupil number: 13 characters, a letter first. Enough on its own."),
                value: s.upn.as_deref(),
                error: e(&s.id("upn")),
                width: "input-width-20",
                ..Input::new(&s.id("upn"), "UPN (unique pupil number)")
            }))
            p class="body" { "Or give first name, last name and date of birth:" }
            (ui::text_input(&Input {
                value: s.given_name.as_deref(),
                error: e(&s.id("given_name")),
                ..Input::new(&s.id("given_name"), "First name")
            }))
            (ui::text_input(&Input {
                value: s.family_name.as_deref(),
                error: e(&s.id("family_name")),
                ..Input::new(&s.id("family_name"), "Last name")
            }))
            div class={ "form-group" @if dob_error.is_some() { " form-group-error" } } {
                fieldset class="fieldset" role="group" aria-describedby={ (s.id("dob")) "-hint" } {
                    legend class="fieldset-legend-s" { "Date of birth" }
                    div class="hint" id={ (s.id("dob")) "-hint" } { "For example, 27 3 2016" }
                    @if let Some(err) = dob_error {
                        p class="error-message" { span class="visually-hidden" { "Error: " } (ui::message(err)) }
                    }
                    div class="date-input" {
                        (date_part(&s.id("dob_day"), "Day", s.dob_day.as_deref(), "input-width-2", dob_error.is_some()))
                        (date_part(&s.id("dob_month"), "Month", s.dob_month.as_deref(), "input-width-2", dob_error.is_some()))
                        (date_part(&s.id("dob_year"), "Year", s.dob_year.as_deref(), "input-width-4", dob_error.is_some()))
                    }
                }
            }
            (ui::text_input(&Input {
                hint: Some("Optional. The first half (for example SW1A) is enough."),
                value: s.postcode.as_deref(),
                error: e(&s.id("postcode")),
                width: "input-width-10",
                ..Input::new(&s.id("postcode"), "Postcode")
            }))
        }
    }
}

fn date_part(id: &str, label: &str, value: Option<&str>, width: &str, error: bool) -> Markup {
    html! {
        div class="date-input-item" {
            label class="label" for=(id) { (label) }
            input class={ "input " (width) @if error { " input-error" } } id=(id) name=(id) type="text"
                inputmode="numeric" autocomplete="off" value=[value];
        }
    }
}

struct LookupForm {
    purpose: Option<String>,
    purpose_detail: Option<String>,
    /// The asker's own case reference (never a name or NHS number).
    case_ref: Option<String>,
    children: Vec<SubjectForm>,
    carers: Vec<SubjectForm>,
    /// The block just added, to put the cursor in it.
    focus: Option<String>,
}

impl LookupForm {
    fn read(form: &FormPairs) -> LookupForm {
        let count =
            |name: &str, max: usize| form.text(name).and_then(|n| n.parse::<usize>().ok()).unwrap_or(0).min(max);
        let mut children: Vec<SubjectForm> =
            (0..count("children", MAX_CHILDREN).max(1)).map(|i| SubjectForm::read(form, &child_prefix(i))).collect();
        let mut carers: Vec<SubjectForm> =
            (0..count("carers", MAX_CARERS)).map(|i| SubjectForm::read(form, &carer_prefix(i))).collect();
        let focus = match form.get("add") {
            Some("child") if children.len() < MAX_CHILDREN => {
                children.push(SubjectForm {
                    prefix: child_prefix(children.len()),
                    focus: true,
                    ..SubjectForm::default()
                });
                Some(format!("{}nhs_number", child_prefix(children.len() - 1)))
            }
            Some("carer") if carers.len() < MAX_CARERS => {
                carers.push(SubjectForm { prefix: carer_prefix(carers.len()), focus: true, ..SubjectForm::default() });
                Some(format!("{}nhs_number", carer_prefix(carers.len() - 1)))
            }
            _ => None,
        };
        LookupForm {
            purpose: form.text("purpose"),
            purpose_detail: form.text("purpose_detail"),
            case_ref: form.text("case_ref"),
            children,
            carers,
            focus,
        }
    }

    fn is_family(&self) -> bool {
        self.children.len() > 1 || !self.carers.is_empty()
    }
}

impl SubjectForm {
    fn is_empty(&self) -> bool {
        [
            &self.nhs_number,
            &self.upn,
            &self.given_name,
            &self.family_name,
            &self.dob_day,
            &self.dob_month,
            &self.dob_year,
            &self.postcode,
        ]
        .iter()
        .all(|f| f.is_none())
    }
}

/// The service input for what was typed, and for each family entry the block prefix it came from
/// (empty blocks are left out). Errors name the block's field.
fn to_input(form: &LookupForm) -> Result<(LookupInput, Vec<String>, Vec<String>), FieldError> {
    let base = LookupInput {
        purpose: form.purpose.clone(),
        purpose_detail: form.purpose_detail.clone(),
        ..LookupInput::default()
    };
    if !form.is_family() {
        let subject = form.children[0].to_raw("subject")?;
        return Ok((LookupInput { subject: Some(subject), ..base }, vec![String::new()], vec![]));
    }
    let raw = |blocks: &[SubjectForm]| -> Result<(Vec<RawSubject>, Vec<String>), FieldError> {
        let mut subjects = Vec::new();
        let mut prefixes = Vec::new();
        for block in blocks.iter().filter(|b| !b.is_empty()) {
            subjects.push(block.to_raw(&format!("{}:subject", block.prefix))?);
            prefixes.push(block.prefix.clone());
        }
        Ok((subjects, prefixes))
    };
    let (children, child_prefixes) = raw(&form.children)?;
    let (carers, carer_prefixes) = raw(&form.carers)?;
    let family = crate::domain::lookup::FamilyInput { children, carers };
    Ok((LookupInput { family: Some(family), ..base }, child_prefixes, carer_prefixes))
}

/// `family.children[1].given_name` → `child1-:given_name` (the block's prefix, then the field).
fn block_field(field: &str, children: &[String], carers: &[String]) -> String {
    let block = |rest: &str, prefixes: &[String]| -> Option<String> {
        let (index, leaf) = rest.split_once(']')?;
        let prefix = prefixes.get(index.parse::<usize>().ok()?)?;
        Some(format!("{prefix}:{}", leaf.trim_start_matches('.')))
    };
    field
        .strip_prefix("family.children[")
        .and_then(|rest| block(rest, children))
        .or_else(|| field.strip_prefix("family.carers[").and_then(|rest| block(rest, carers)))
        .map(|f| if f.ends_with(':') { format!("{f}subject") } else { f })
        .unwrap_or_else(|| field.to_string())
}

fn page(session: &Session, form: &LookupForm, errors: &[FieldError]) -> Markup {
    let mut options = vec![("", "Choose a purpose")];
    options.extend(Purpose::ALL.iter().map(|p| (p.as_str(), p.describe())));
    let body = html! {
        (ui::error_summary(errors, field_id))
        h1 class="heading-l" { "Is this child known elsewhere?" }
        form method="post" action="/lookup" novalidate {
            (ui::csrf_field(session))
            (ui::select(&Select {
                id: "purpose",
                name: None,
                label: "Why are you asking?",
                hint: Some("Recorded with your lookup. Type the first letter to choose."),
                options,
                selected: form.purpose.as_deref(),
                error: ui::error_for(errors, field_id, "purpose"),
                autofocus: form.focus.is_none(),
            }))
            (ui::text_input(&Input {
                hint: Some("Only if the purpose is other: a short reason, not case details."),
                value: form.purpose_detail.as_deref(),
                error: ui::error_for(errors, field_id, "purpose_detail"),
                width: "input-width-full",
                ..Input::new("purpose_detail", "Other purpose")
            }))
            input type="hidden" name="children" value=(form.children.len());
            input type="hidden" name="carers" value=(form.carers.len());
            @for (i, child) in form.children.iter().enumerate() {
                (subject_fields(&if form.children.len() == 1 { "The child".to_string() } else { format!("Child {}", i + 1) }, child, errors))
            }
            @for (i, carer) in form.carers.iter().enumerate() {
                (subject_fields(&format!("Parent or carer {}", i + 1), carer, errors))
            }
            // After the child, so the keyboard path from purpose to NHS number is unchanged.
            (ui::text_input(&Input {
                hint: Some("Optional: your own system's reference, to tell your lookups and requests apart. Never the child's name or NHS number. Only your organisation sees it."),
                value: form.case_ref.as_deref(),
                error: ui::error_for(errors, field_id, "case_ref"),
                autocomplete: "off",
                ..Input::new("case_ref", "Your case reference")
            }))
            // The first submit button is the one Enter presses: the lookup, never "add".
            button type="submit" class="button" { "Look up" }
            div class="button-group" {
                @if form.children.len() < MAX_CHILDREN {
                    button type="submit" name="add" value="child" class="button button-secondary" { "Add another child" }
                }
                @if form.carers.len() < MAX_CARERS {
                    button type="submit" name="add" value="carer" class="button button-secondary" { "Add a parent or carer" }
                }
            }
        }
    };
    ui::layout(if errors.is_empty() { "Look up a child" } else { "Error: Look up a child" }, Some(session), body)
}

/// GET /lookup
pub async fn form(session: Session) -> Response {
    let empty = LookupForm {
        purpose: None,
        purpose_detail: None,
        case_ref: None,
        children: vec![SubjectForm::default()],
        carers: vec![],
        focus: None,
    };
    respond(StatusCode::OK, page(&session, &empty, &[]))
}

/// POST /lookup: the same service call as `POST /api/v1/lookups` (rate limits, audit before
/// the answer, disclosure policy). On a validation error the form comes back with what was
/// typed (never logged). The answer is kept (the API's redacted view, for this session) and
/// the browser is sent to its own address, so Back and Refresh show it again without a second
/// lookup.
pub async fn submit(State(state): State<AppState>, session: Session, form: FormPairs) -> PageResult {
    let typed = LookupForm::read(&form);
    if typed.focus.is_some() {
        // "Add another child" or "Add a parent or carer": the same form with one more block.
        return Ok(respond(StatusCode::OK, page(&session, &typed, &[])));
    }
    let case_ref = match parse_case_ref("case_ref", typed.case_ref.as_deref()) {
        Ok(case_ref) => case_ref,
        Err(error) => return Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, &typed, &[error]))),
    };
    let (input, child_prefixes, carer_prefixes) = match to_input(&typed) {
        Ok(input) => input,
        Err(error) => return Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, &typed, &[error]))),
    };
    match state.lookup(&session.actor, input).await {
        Ok(outcome) => {
            state.metrics.increment("lookups", 1);
            let answer = crate::http::lookups::answer(outcome);
            let kept = serde_json::to_string(&answer)
                .map(|json| KeptAnswer { answer: json, case_ref: case_ref.clone() })
                .map_err(|e| tracing::error!(error = %e, "a lookup answer could not be kept"));
            if let Ok(kept) = kept {
                match state.keep_lookup_answer(&session.actor, &session.page, &answer.lookup_id, &kept).await {
                    Ok(()) => return Ok(see_other(&format!("/lookups/{}", answer.lookup_id))),
                    // The lookup is audited and answered: show it here rather than lose it.
                    Err(e) => tracing::warn!(error = %e, "a lookup answer could not be kept; shown once"),
                }
            }
            Ok(respond(StatusCode::OK, answer_page(&session, &answer, case_ref.as_deref())))
        }
        Err(e) => {
            let errors = field_errors(e, &session)?
                .into_iter()
                .map(|mut e| {
                    e.field = block_field(&e.field, &child_prefixes, &carer_prefixes);
                    e
                })
                .collect::<Vec<_>>();
            Ok(respond(StatusCode::UNPROCESSABLE_ENTITY, page(&session, &typed, &errors)))
        }
    }
}

/// GET /lookups/{lookup_id}: a lookup's answer again, for the user and session that asked
/// (404 for anyone else, and after a few hours). Not a new lookup: nothing is audited.
pub async fn show(State(state): State<AppState>, session: Session, Path(lookup_id): Path<String>) -> PageResult {
    let err = |e| PageError::new(e, &session);
    if lookup_id.starts_with(crate::service::page_state::SUBJECT_ACCESS_PREFIX) {
        return Err(PageError::new(ApiError::NotFound, &session));
    }
    let kept = state.kept_lookup_answer(&session.actor, &session.page, &lookup_id).await.map_err(err)?;
    let answer: LookupAnswer = serde_json::from_str(&kept.answer).map_err(|e| {
        tracing::error!(error = %e, "a kept lookup answer could not be read");
        PageError::new(ApiError::Internal, &session)
    })?;
    Ok(respond(StatusCode::OK, answer_page(&session, &answer, kept.case_ref.as_deref())))
}

/// Your own organisation's records last (and marked), so the organisations to call come first.
fn others_first(matches: &[MatchAnswer]) -> Vec<&MatchAnswer> {
    let mut ordered: Vec<&MatchAnswer> = matches.iter().collect();
    ordered.sort_by_key(|m| m.own_organisation);
    ordered
}

fn card(m: &MatchAnswer, can_request: bool, case_ref: Option<&str>) -> Markup {
    if m.shielded { shielded_card(m, can_request, case_ref) } else { match_card(m, can_request, case_ref) }
}

/// The "Request this record" link, carrying the asker's case reference to the request form.
fn request_href(match_id: &str, case_ref: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("match_id", match_id);
    if let Some(c) = case_ref {
        query.append_pair("case_ref", c);
    }
    format!("/requests/new?{}", query.finish())
}

fn last_update(text: &str) -> Option<String> {
    let at = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(ui::when(i64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?))
}

fn answer_page(session: &Session, a: &LookupAnswer, case_ref: Option<&str>) -> Markup {
    let c = &a.coverage;
    let can_request = access::allows(session.actor.role, "GET", "/requests/new");
    let named = a.matches.iter().filter(|m| !m.shielded).count();
    let body = html! {
        @if let Some(r) = case_ref {
            p class="body" { "Your case reference: " strong { (r) } }
        }
        @if !a.known {
            div class="panel panel-grey" {
                h1 class="heading-l" { "Not known to participating organisations" }
            }
            p class="body-l" { strong { "This is not a statement that the child is safe." } }
            p class="body" {
                (c.organisations_with_holdings) " of " (c.organisations_participating)
                " participating organisations have registered records (" (c.holdings)
                @if c.holdings == 1 { " record" } @else { " records" }
                @if let Some(at) = c.last_update.as_deref().and_then(last_update) { ", last updated " (at) } ")."
            }
        } @else {
            div class="panel panel-blue" {
                h1 class="heading-l" {
                    @if named == 0 { "Known to a participating organisation" }
                    @else { "Known to " (named) " organisation" @if named != 1 { "s" } }
                }
                p class="body" {
                    @if named == 0 { "They have been alerted and will contact you." }
                    @else { "Call the contact below." }
                }
            }
            @if let Some(children) = &a.children {
                // A family: each entered child in turn, then what was found through the carers.
                @for child in children {
                    h2 class="heading-m" { "Child " (child.child + 1) }
                    @if child.matches.is_empty() { p class="body" { "Not known through this child's own details." } }
                    @for m in others_first(&child.matches) { (card(m, can_request, case_ref)) }
                }
                @if let Some(family) = a.family_matches.as_ref().filter(|f| !f.is_empty() || a.carers_asked.unwrap_or(0) > 0) {
                    h2 class="heading-m" { "Known through a parent or carer" }
                    @if family.is_empty() { p class="body" { "No other records through the parents or carers you entered." } }
                    @for m in others_first(family) { (card(m, can_request, case_ref)) }
                }
            } @else {
                @for m in others_first(&a.matches) { (card(m, can_request, case_ref)) }
            }
            p class="body-s" {
                "Coverage: " (c.organisations_with_holdings) " of " (c.organisations_participating)
                " participating organisations have registered records."
            }
        }
        @if !a.known {
            h2 class="heading-m" { "What to do next" }
            ul class="list list-bullet" {
                li { "Ask the organisations that do not take part directly, such as the child's school or GP practice if they are not listed below." }
                li { "Note the lookup reference below on your case record: it shows you looked." }
                @if !a.widen.is_empty() { li { "Widen the lookup (see below) and look up again." } }
            }
        }
        @if let Some(area) = &c.area { (area_section(area)) }
        (widen_section(&a.widen))
        p class="body-s" { "Lookup reference: " code { (a.lookup_id) } " (recorded in the audit trail)." }
        p class="body" { a href="/lookup" class="link" { "Look up another child" } }
    };
    ui::layout("Lookup answer", Some(session), body)
}

/// Who takes part in the child's area (or nationally): from the postcode district typed and the
/// directory alone, so the same words for a child not known and a child held behind a shield.
fn area_section(area: &AreaCoverage) -> Markup {
    let missing: Vec<&str> = area
        .kinds
        .iter()
        .filter(|k| k.participating == 0 && k.kind != OrgKind::Other)
        .map(|k| kind_in_a_sentence(k.kind))
        .collect();
    html! {
        h2 class="heading-m" id="area" {
            @if area.local { "Who takes part in the child's area" } @else { "Who takes part across the country" }
        }
        p class="body" {
            @if area.local { "Organisations that cover the area of the postcode you gave, or everywhere, by kind." }
            @else { "You gave no postcode: adding one shows who takes part in the child's area." }
        }
        div class="table-wrap" {
            table class="table" aria-labelledby="area" {
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Taking part" } th scope="col" { "Have sent records" } th scope="col" { "Last sent records" } } }
                tbody {
                    @for k in area.kinds.iter().filter(|k| k.participating > 0) {
                        tr {
                            th scope="row" { (kind_words(k.kind)) }
                            td data-label="Taking part" { (k.participating) }
                            td data-label="Have sent records" { (k.with_records) }
                            td data-label="Last sent records" { (k.last_sync.as_deref().and_then(last_update).unwrap_or_else(|| "Not yet".into())) }
                        }
                    }
                }
            }
        }
        @if !missing.is_empty() {
            p class="body" { "None taking part here: " (missing.join(", ")) ". Ask them directly." }
        }
    }
}

/// How to widen the lookup, decided from the fields given (never from what was found).
fn widen_section(widen: &[Widen]) -> Markup {
    html! {
        @if !widen.is_empty() {
            h2 class="heading-m" id="widen" { "Could a record have been missed?" }
            ul class="list list-bullet" aria-labelledby="widen" {
                @for w in widen { li { (w.advice()) } }
            }
        }
    }
}

/// The same, inside a sentence.
fn kind_in_a_sentence(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::LocalAuthority => "local authorities",
        OrgKind::NhsTrust => "NHS trusts",
        OrgKind::GpPractice => "GP practices",
        OrgKind::School => "schools",
        OrgKind::Police => "police forces",
        OrgKind::Other => "other organisations",
    }
}

/// A kind of organisation in plural words.
fn kind_words(kind: OrgKind) -> &'static str {
    match kind {
        OrgKind::LocalAuthority => "Local authorities",
        OrgKind::NhsTrust => "NHS trusts",
        OrgKind::GpPractice => "GP practices",
        OrgKind::School => "Schools",
        OrgKind::Police => "Police forces",
        OrgKind::Other => "Other organisations",
    }
}

fn match_card(m: &MatchAnswer, can_request: bool, case_ref: Option<&str>) -> Markup {
    let Some(org) = &m.organisation else { return html! {} };
    let contact = m.contact.clone().unwrap_or_default();
    let best = m.records.first();
    let phone = contact.phone.clone().unwrap_or_else(|| org.duty_phone.clone());
    let email = contact.email.clone().unwrap_or_else(|| org.secure_email.clone());
    let id = format!("org-{}{}", org.code, if m.own_organisation { "-own" } else { "" });
    html! {
        section class={ "card" @if m.own_organisation { " card-own" } } aria-labelledby=(id) {
            h2 class="heading-m" id=(id) {
                (org.name) @if m.own_organisation { " " (ui::tag("your organisation", "grey")) }
            }
            @if m.own_organisation {
                p class="body" { "Your own organisation holds this record: ask your own team." }
            }
            dl class="contact" {
                dt { "Phone" } dd class="contact-main" { a href=(ui::tel_href(&phone)) class="link" { (phone) } }
                dt { "Secure email" } dd class="contact-main" { a href={ "mailto:" (email) } class="link" { (email) } }
                @if let Some(team) = &contact.team { dt { "Team" } dd { (team) } }
                @if let Some(ooh) = &org.out_of_hours_phone {
                    dt { "Out of hours" } dd { a href=(ui::tel_href(ooh)) class="link" { (ooh) } }
                }
            }
            p class="body" { (ui::tier_tag(&m.tier)) " " (ui::tier_words(&m.tier)) }
            p class="body" { "Why: " (m.evidence) "." }
            @if let Some(category) = m.category {
                p class="body" { "Record: " (ui::words(category.as_str()))
                    @if let Some(status) = m.status { ", " (status.as_str()) } }
            }
            @if best.is_some_and(|b| b.ambiguous) {
                p class="body warning-text" { "A detail that decided this match is shared by more records than one child would have: check with them." }
            }
            @if m.records.len() > 1 {
                p class="body-s" { (m.records.len()) " matching records at this organisation." }
            }
            @if can_request && !m.own_organisation {
                a href=(request_href(&m.match_id, case_ref)) class="button button-secondary" role="button" {
                    "Request this record" span class="visually-hidden" { " from " (org.name) }
                }
            }
        }
    }
}

/// A shielded record: no organisation, contact or category, ever; the holder calls the worker.
fn shielded_card(m: &MatchAnswer, can_request: bool, case_ref: Option<&str>) -> Markup {
    html! {
        section class="card" aria-labelledby={ "shielded-" (m.match_id) } {
            h2 class="heading-m" id={ "shielded-" (m.match_id) } { "A participating organisation (shielded record)" }
            p class="body" {
                "This child is known to a participating organisation that does not show where the child is known. "
                "It has been alerted to your lookup and will contact you."
            }
            p class="body" { (ui::tier_tag(&m.tier)) " " (ui::tier_words(&m.tier)) }
            p class="body" { "Why: " (m.evidence) "." }
            @if can_request {
                a href=(request_href(&m.match_id, case_ref)) class="button button-secondary" role="button" {
                    "Request this record" span class="visually-hidden" { " (shielded)" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> FormPairs {
        FormPairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn three_date_fields_become_one_date_of_birth() {
        let s = SubjectForm::read(&form(&[("dob_day", "7"), ("dob_month", "4"), ("dob_year", "2016")]), "");
        assert_eq!(s.to_raw("subject").unwrap().date_of_birth.as_deref(), Some("2016-04-07"));
    }

    #[test]
    fn half_a_date_names_the_date_field_without_repeating_it() {
        let s = SubjectForm::read(&form(&[("dob_day", "31"), ("dob_year", "2016")]), "");
        let e = s.to_raw("subject").unwrap_err();
        assert_eq!(field_id(&e.field), "dob_day");
        assert!(!e.message.contains("2016"));
    }

    #[test]
    fn a_second_child_block_reads_its_own_prefixed_fields() {
        let f = form(&[("nhs_number", "943 476 5919"), ("child-2-nhs_number", "907 483 3780")]);
        assert_eq!(SubjectForm::read(&f, "child-2-").nhs_number.as_deref(), Some("907 483 3780"));
        assert_eq!(SubjectForm::read(&f, "").nhs_number.as_deref(), Some("943 476 5919"));
    }
}
