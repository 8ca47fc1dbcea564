//! A record request: from a match, a practitioner asks the holding organisation for the record,
//! with a legal basis and an urgency. The state machine, who may take each step, and deadlines.

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, Weekday};

use super::FieldError;
use super::cursor::PageCursor;
use super::organisation::parse_label;
use crate::clock::{Millis, to_datetime};

/// The most free text a request step may carry: enough for a reason, not for case notes.
pub const MAX_REQUEST_TEXT: usize = 500;
/// A fulfilment reference (e.g. a secure transfer id) is short.
pub const MAX_REFERENCE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LegalBasis {
    /// Children Act 1989 s47: enquiry where a child may be suffering significant harm.
    #[serde(rename = "ca1989-s47")]
    Ca1989S47,
    /// Children Act 1989 s17: child in need.
    #[serde(rename = "ca1989-s17")]
    Ca1989S17,
    /// Children Act 1989 s20/s31: looked-after child (accommodation or care order).
    #[serde(rename = "ca1989-s20-s31")]
    Ca1989S20S31,
    /// Children Act 2004 s11: duty to safeguard and promote welfare.
    #[serde(rename = "ca2004-s11")]
    Ca2004S11,
    CourtOrder,
    Consent,
    /// Needs `legal_basis_detail`.
    Other,
}

impl LegalBasis {
    pub const ALL: [LegalBasis; 7] = [
        LegalBasis::Ca1989S47,
        LegalBasis::Ca1989S17,
        LegalBasis::Ca1989S20S31,
        LegalBasis::Ca2004S11,
        LegalBasis::CourtOrder,
        LegalBasis::Consent,
        LegalBasis::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LegalBasis::Ca1989S47 => "ca1989-s47",
            LegalBasis::Ca1989S17 => "ca1989-s17",
            LegalBasis::Ca1989S20S31 => "ca1989-s20-s31",
            LegalBasis::Ca2004S11 => "ca2004-s11",
            LegalBasis::CourtOrder => "court-order",
            LegalBasis::Consent => "consent",
            LegalBasis::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<LegalBasis> {
        LegalBasis::ALL.into_iter().find(|b| b.as_str() == text.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Urgency {
    /// Risk to a child now: hours (4 by default).
    Immediate,
    /// 24 hours.
    Urgent,
    /// 10 working days.
    Routine,
}

impl Urgency {
    pub const ALL: [Urgency; 3] = [Urgency::Immediate, Urgency::Urgent, Urgency::Routine];

    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Immediate => "immediate",
            Urgency::Urgent => "urgent",
            Urgency::Routine => "routine",
        }
    }

    pub fn parse(text: &str) -> Option<Urgency> {
        Urgency::ALL.into_iter().find(|u| u.as_str() == text.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RequestState {
    Requested,
    Acknowledged,
    Fulfilled,
    Declined,
    Withdrawn,
}

impl RequestState {
    pub const ALL: [RequestState; 5] = [
        RequestState::Requested,
        RequestState::Acknowledged,
        RequestState::Fulfilled,
        RequestState::Declined,
        RequestState::Withdrawn,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Requested => "requested",
            RequestState::Acknowledged => "acknowledged",
            RequestState::Fulfilled => "fulfilled",
            RequestState::Declined => "declined",
            RequestState::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<RequestState> {
        RequestState::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }

    /// Nothing more can happen to a request in a terminal state.
    pub fn is_terminal(self) -> bool {
        matches!(self, RequestState::Fulfilled | RequestState::Declined | RequestState::Withdrawn)
    }

    /// Open states are the ones a deadline applies to.
    pub const OPEN: [RequestState; 2] = [RequestState::Requested, RequestState::Acknowledged];
}

/// Which organisation a user acts for, relative to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Requester,
    Holder,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Requester => "requester",
            Side::Holder => "holder",
        }
    }
}

/// A step a user can take on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Acknowledge,
    Fulfil,
    Decline,
    Withdraw,
}

impl Action {
    pub const ALL: [Action; 4] = [Action::Acknowledge, Action::Fulfil, Action::Decline, Action::Withdraw];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Acknowledge => "acknowledge",
            Action::Fulfil => "fulfil",
            Action::Decline => "decline",
            Action::Withdraw => "withdraw",
        }
    }

    /// The side allowed to take this step: the holder answers, the requester withdraws.
    pub fn side(self) -> Side {
        match self {
            Action::Withdraw => Side::Requester,
            Action::Acknowledge | Action::Fulfil | Action::Decline => Side::Holder,
        }
    }

    /// The state the step leads to.
    pub fn target(self) -> RequestState {
        match self {
            Action::Acknowledge => RequestState::Acknowledged,
            Action::Fulfil => RequestState::Fulfilled,
            Action::Decline => RequestState::Declined,
            Action::Withdraw => RequestState::Withdrawn,
        }
    }
}

/// Why a step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The other organisation takes this step (e.g. only the holder fulfils).
    WrongSide { allowed: Side },
    /// Not allowed from the current state (terminal, or acknowledging twice).
    FromState(RequestState),
}

impl Refusal {
    pub fn message(self, action: Action) -> String {
        match self {
            Refusal::WrongSide { allowed: Side::Holder } => {
                format!("only the organisation holding the record may {} this request", action.as_str())
            }
            Refusal::WrongSide { allowed: Side::Requester } => {
                format!("only the requesting organisation may {} this request", action.as_str())
            }
            Refusal::FromState(state) => {
                format!("a request that is {} cannot be {}", state.as_str(), past_tense(action))
            }
        }
    }
}

fn past_tense(action: Action) -> &'static str {
    match action {
        Action::Acknowledge => "acknowledged",
        Action::Fulfil => "fulfilled",
        Action::Decline => "declined",
        Action::Withdraw => "withdrawn",
    }
}

/// The whole state machine. requested → acknowledged; requested or acknowledged → fulfilled,
/// declined (holder) or withdrawn (requester). A holder may fulfil or decline without
/// acknowledging first (an immediate request is often answered at once).
pub fn transition(from: RequestState, action: Action, side: Side) -> Result<RequestState, Refusal> {
    if action.side() != side {
        return Err(Refusal::WrongSide { allowed: action.side() });
    }
    let allowed = match action {
        Action::Acknowledge => from == RequestState::Requested,
        Action::Fulfil | Action::Decline | Action::Withdraw => !from.is_terminal(),
    };
    if allowed { Ok(action.target()) } else { Err(Refusal::FromState(from)) }
}

/// How long each urgency has. Routine counts working days (weekends and bank holidays skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadlines {
    pub immediate_hours: u32,
    pub urgent_hours: u32,
    pub routine_working_days: u32,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines { immediate_hours: 4, urgent_hours: 24, routine_working_days: 10 }
    }
}

impl Deadlines {
    /// When a request made at `created` falls due.
    pub fn due_at(&self, urgency: Urgency, created: Millis) -> Millis {
        const HOUR: Millis = 3_600_000;
        match urgency {
            Urgency::Immediate => created + Millis::from(self.immediate_hours) * HOUR,
            Urgency::Urgent => created + Millis::from(self.urgent_hours) * HOUR,
            Urgency::Routine => add_working_days(created, self.routine_working_days),
        }
    }
}

/// England and Wales bank holidays known to this build (gov.uk). Past 2027 only weekends are
/// skipped: a documented limit until the list is extended.
const BANK_HOLIDAYS: &[(i32, Month, u8)] = &[
    (2026, Month::January, 1),
    (2026, Month::April, 3),
    (2026, Month::April, 6),
    (2026, Month::May, 4),
    (2026, Month::May, 25),
    (2026, Month::August, 31),
    (2026, Month::December, 25),
    (2026, Month::December, 28),
    (2027, Month::January, 1),
    (2027, Month::March, 26),
    (2027, Month::March, 29),
    (2027, Month::May, 3),
    (2027, Month::May, 31),
    (2027, Month::August, 30),
    (2027, Month::December, 27),
    (2027, Month::December, 28),
];

pub fn is_bank_holiday(date: Date) -> bool {
    BANK_HOLIDAYS.iter().any(|&(y, m, d)| date.year() == y && date.month() == m && date.day() == d)
}

pub fn is_working_day(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday) && !is_bank_holiday(date)
}

/// The same time of day, `days` working days later (UTC calendar days: a request made late in a
/// British Summer Time evening counts from the UTC date, an hour's difference at most).
pub fn add_working_days(start: Millis, days: u32) -> Millis {
    let mut date = to_datetime(start).date();
    let mut left = days;
    let mut added = 0i64;
    while left > 0 {
        date = date.next_day().unwrap_or(date);
        added += 1;
        if is_working_day(date) {
            left -= 1;
        }
    }
    start + Duration::days(added).whole_milliseconds() as Millis
}

/// A request as received (all optional, so every missing or bad field is reported at once).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInput {
    /// A `match_id` from a lookup (`lm_…`) or from your matches (`m_…`).
    #[schema(required = true, nullable = false)]
    pub match_id: Option<String>,
    /// `ca1989-s47`, `ca1989-s17`, `ca1989-s20-s31`, `ca2004-s11`, `court-order`, `consent` or `other`.
    #[schema(required = true, nullable = false)]
    pub legal_basis: Option<String>,
    /// Required when legal_basis is `other`: the basis in a few words (at most 500 characters;
    /// not for case details).
    pub legal_basis_detail: Option<String>,
    /// Why the record is needed, in at most 500 characters. Not for case details: say what the
    /// record is needed for, not what happened to the child.
    #[schema(required = true, nullable = false)]
    pub reason: Option<String>,
    /// `immediate` (risk now: hours), `urgent` (24 hours) or `routine` (10 working days).
    #[schema(required = true, nullable = false)]
    pub urgency: Option<String>,
    /// Optional: your own case reference (at most 24 letters, digits, spaces, `-/_.`, with a
    /// digit; never a name or NHS number), shown to your organisation only.
    pub case_ref: Option<String>,
}

/// A validated request, ready to resolve its match and store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRequest {
    pub match_id: String,
    pub legal_basis: LegalBasis,
    pub legal_basis_detail: Option<String>,
    pub reason: String,
    pub urgency: Urgency,
    pub case_ref: Option<String>,
}

/// Free text bounded to the request limit; `None` when absent or blank.
pub fn optional_text(field: &str, text: Option<&str>, max: usize) -> Result<Option<String>, FieldError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        Some(t) => parse_label(field, t, max).map(Some),
        None => Ok(None),
    }
}

impl RequestInput {
    pub fn into_new(self) -> Result<NewRequest, Vec<FieldError>> {
        let mut errors = Vec::new();
        let match_id = match self.match_id.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            None => {
                errors.push(FieldError::required("match_id"));
                None
            }
            // Ids are ours: anything else is simply not found later, but bound its size here.
            Some(m) if m.len() > 64 || !m.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                errors.push(FieldError::new("match_id", "invalid_match_id", "match_id is not a match id"));
                None
            }
            Some(m) => Some(m.to_string()),
        };
        let legal_basis = match self.legal_basis.as_deref() {
            None => {
                errors.push(FieldError::required("legal_basis"));
                None
            }
            Some(b) => LegalBasis::parse(b)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "legal_basis",
                        "invalid_legal_basis",
                        "legal_basis must be ca1989-s47, ca1989-s17, ca1989-s20-s31, ca2004-s11, court-order, consent \
                         or other",
                    ))
                })
                .ok(),
        };
        let legal_basis_detail =
            optional_text("legal_basis_detail", self.legal_basis_detail.as_deref(), MAX_REQUEST_TEXT)
                .map_err(|e| errors.push(e))
                .ok()
                .flatten();
        if legal_basis == Some(LegalBasis::Other)
            && legal_basis_detail.is_none()
            && !errors.iter().any(|e| e.field == "legal_basis_detail")
        {
            errors.push(FieldError::new(
                "legal_basis_detail",
                "required",
                "legal_basis_detail is required when legal_basis is other (the basis in a few words)",
            ));
        }
        let reason = match optional_text("reason", self.reason.as_deref(), MAX_REQUEST_TEXT) {
            Ok(Some(r)) => Some(r),
            Ok(None) => {
                errors.push(FieldError::required("reason"));
                None
            }
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let urgency = match self.urgency.as_deref() {
            None => {
                errors.push(FieldError::required("urgency"));
                None
            }
            Some(u) => Urgency::parse(u)
                .ok_or_else(|| {
                    errors.push(FieldError::new(
                        "urgency",
                        "invalid_urgency",
                        "urgency must be immediate, urgent or routine",
                    ))
                })
                .ok(),
        };
        let case_ref = crate::domain::case_ref::parse_case_ref("case_ref", self.case_ref.as_deref())
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        match (match_id, legal_basis, reason, urgency) {
            (Some(match_id), Some(legal_basis), Some(reason), Some(urgency)) if errors.is_empty() => {
                Ok(NewRequest { match_id, legal_basis, legal_basis_detail, reason, urgency, case_ref })
            }
            _ => Err(errors),
        }
    }
}

/// How a record was sent to the requester.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FulfilMethod {
    SecureEmail,
    SecureTransfer,
    Post,
    InPerson,
    Other,
}

impl FulfilMethod {
    pub const ALL: [FulfilMethod; 5] = [
        FulfilMethod::SecureEmail,
        FulfilMethod::SecureTransfer,
        FulfilMethod::Post,
        FulfilMethod::InPerson,
        FulfilMethod::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FulfilMethod::SecureEmail => "secure-email",
            FulfilMethod::SecureTransfer => "secure-transfer",
            FulfilMethod::Post => "post",
            FulfilMethod::InPerson => "in-person",
            FulfilMethod::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<FulfilMethod> {
        FulfilMethod::ALL.into_iter().find(|m| m.as_str() == text.trim())
    }
}

/// The body of acknowledge, fulfil, decline or withdraw (every field optional in the shape;
/// which are required depends on the step).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StepInput {
    /// fulfil: `secure-email`, `secure-transfer`, `post`, `in-person` or `other` (required).
    pub how: Option<String>,
    /// fulfil: e.g. the secure transfer's reference (at most 100 characters).
    pub reference: Option<String>,
    /// fulfil: when the record was sent (RFC 3339; default now; not in the future).
    pub sent_at: Option<String>,
    /// decline (required) and withdraw: why, in at most 500 characters, which the other side
    /// sees. Not for case details.
    pub reason: Option<String>,
    /// acknowledge and fulfil: a short note for the other side (at most 500 characters).
    /// Not for case details.
    pub note: Option<String>,
}

/// A validated step: what goes into the request's history beside the new state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Step {
    pub how: Option<FulfilMethod>,
    pub reference: Option<String>,
    pub sent_at: Option<Millis>,
    pub note: Option<String>,
}

impl StepInput {
    pub fn into_step(self, action: Action, now: Millis) -> Result<Step, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut refuse = |field: &str, allowed: bool| {
            if !allowed {
                errors.push(FieldError::new(
                    field,
                    "not_allowed",
                    format!("{field} is not accepted when you {} a request", action.as_str()),
                ));
            }
        };
        refuse("how", self.how.is_none() || action == Action::Fulfil);
        refuse("reference", self.reference.is_none() || action == Action::Fulfil);
        refuse("sent_at", self.sent_at.is_none() || action == Action::Fulfil);
        refuse("reason", self.reason.is_none() || matches!(action, Action::Decline | Action::Withdraw));
        refuse("note", self.note.is_none() || matches!(action, Action::Acknowledge | Action::Fulfil));
        let mut step = Step::default();
        if action == Action::Fulfil {
            step.how = match self.how.as_deref() {
                None => {
                    errors.push(FieldError::new(
                        "how",
                        "required",
                        "how is required: secure-email, secure-transfer, post, in-person or other",
                    ));
                    None
                }
                Some(h) => FulfilMethod::parse(h)
                    .ok_or_else(|| {
                        errors.push(FieldError::new(
                            "how",
                            "invalid_how",
                            "how must be secure-email, secure-transfer, post, in-person or other",
                        ))
                    })
                    .ok(),
            };
            step.reference = optional_text("reference", self.reference.as_deref(), MAX_REFERENCE)
                .map_err(|e| errors.push(e))
                .ok()
                .flatten();
            step.sent_at = match self.sent_at.as_deref() {
                None => Some(now),
                Some(text) => match crate::clock::parse_instant(text) {
                    Some(at) if at <= now => Some(at),
                    Some(_) => {
                        errors.push(FieldError::new("sent_at", "in_future", "sent_at cannot be in the future"));
                        None
                    }
                    None => {
                        errors.push(FieldError::new("sent_at", "invalid_time", "sent_at must be an RFC 3339 time"));
                        None
                    }
                },
            };
        }
        let text = match action {
            Action::Decline | Action::Withdraw => ("reason", self.reason.as_deref()),
            Action::Acknowledge | Action::Fulfil => ("note", self.note.as_deref()),
        };
        step.note = optional_text(text.0, text.1, MAX_REQUEST_TEXT).map_err(|e| errors.push(e)).ok().flatten();
        if action == Action::Decline && step.note.is_none() && !errors.iter().any(|e| e.field == "reason") {
            errors.push(FieldError::new(
                "reason",
                "required",
                "reason is required to decline: the requester sees it (not for case details)",
            ));
        }
        if errors.is_empty() { Ok(step) } else { Err(errors) }
    }
}

/// Filters for the inbox.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub side: Option<Side>,
    pub state: Option<RequestState>,
    pub overdue: Option<bool>,
    pub limit: i64,
    /// The previous page's last row (created at, id): this page starts after it.
    pub after: Option<PageCursor>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ms(at: time::OffsetDateTime) -> Millis {
        (at.unix_timestamp_nanos() / 1_000_000) as Millis
    }

    #[test]
    fn every_allowed_transition_leads_to_its_target_state() {
        use Action::*;
        use RequestState::*;
        let allowed = [
            (Requested, Acknowledge, Side::Holder, Acknowledged),
            (Requested, Fulfil, Side::Holder, Fulfilled),
            (Requested, Decline, Side::Holder, Declined),
            (Requested, Withdraw, Side::Requester, Withdrawn),
            (Acknowledged, Fulfil, Side::Holder, Fulfilled),
            (Acknowledged, Decline, Side::Holder, Declined),
            (Acknowledged, Withdraw, Side::Requester, Withdrawn),
        ];
        for (from, action, side, to) in allowed {
            assert_eq!(transition(from, action, side), Ok(to), "{from:?} {action:?}");
        }
        // Every other (state, action) pair by the right side is refused from that state.
        for from in RequestState::ALL {
            for action in Action::ALL {
                if allowed.iter().any(|(f, a, _, _)| *f == from && *a == action) {
                    continue;
                }
                assert_eq!(
                    transition(from, action, action.side()),
                    Err(Refusal::FromState(from)),
                    "{from:?} {action:?} must be refused"
                );
            }
        }
    }

    #[test]
    fn the_wrong_side_is_refused_whatever_the_state() {
        for from in RequestState::ALL {
            for action in Action::ALL {
                let wrong = if action.side() == Side::Holder { Side::Requester } else { Side::Holder };
                assert_eq!(transition(from, action, wrong), Err(Refusal::WrongSide { allowed: action.side() }));
            }
        }
    }

    #[test]
    fn terminal_states_allow_nothing() {
        for state in [RequestState::Fulfilled, RequestState::Declined, RequestState::Withdrawn] {
            assert!(state.is_terminal());
            for action in Action::ALL {
                assert!(transition(state, action, action.side()).is_err());
            }
        }
        assert!(!RequestState::Requested.is_terminal() && !RequestState::Acknowledged.is_terminal());
    }

    #[test]
    fn refusal_messages_name_the_rule() {
        let m = Refusal::FromState(RequestState::Fulfilled).message(Action::Withdraw);
        assert_eq!(m, "a request that is fulfilled cannot be withdrawn");
        assert!(Refusal::WrongSide { allowed: Side::Holder }.message(Action::Fulfil).contains("holding"));
    }

    #[test]
    fn immediate_and_urgent_deadlines_are_hours_later() {
        let d = Deadlines::default();
        let t = ms(datetime!(2026-11-24 09:00 UTC));
        assert_eq!(d.due_at(Urgency::Immediate, t), ms(datetime!(2026-11-24 13:00 UTC)));
        assert_eq!(d.due_at(Urgency::Urgent, t), ms(datetime!(2026-11-25 09:00 UTC)));
        let custom = Deadlines { immediate_hours: 2, ..d };
        assert_eq!(custom.due_at(Urgency::Immediate, t), ms(datetime!(2026-11-24 11:00 UTC)));
    }

    #[test]
    fn routine_is_ten_working_days_skipping_weekends() {
        let d = Deadlines::default();
        // Tuesday 24 November 2026 → Tuesday 8 December 2026 (two weekends skipped).
        let t = ms(datetime!(2026-11-24 09:00 UTC));
        assert_eq!(d.due_at(Urgency::Routine, t), ms(datetime!(2026-12-08 09:00 UTC)));
        // Made on a Saturday: counting starts Monday, due the Friday of the following week.
        let sat = ms(datetime!(2026-11-28 10:00 UTC));
        assert_eq!(d.due_at(Urgency::Routine, sat), ms(datetime!(2026-12-11 10:00 UTC)));
    }

    #[test]
    fn routine_skips_england_and_wales_bank_holidays() {
        let d = Deadlines::default();
        // From Friday 18 December 2026: 25 and 28 December and 1 January 2027 are holidays.
        let t = ms(datetime!(2026-12-18 12:00 UTC));
        // Working days: 21,22,23,24,29,30,31 Dec, 4,5,6 Jan.
        assert_eq!(d.due_at(Urgency::Routine, t), ms(datetime!(2027-01-06 12:00 UTC)));
        // Easter 2027: Good Friday 26 March and Easter Monday 29 March.
        let t = ms(datetime!(2027-03-22 09:00 UTC));
        // 23,24,25,30,31 Mar, 1,2,5,6,7 Apr.
        assert_eq!(d.due_at(Urgency::Routine, t), ms(datetime!(2027-04-07 09:00 UTC)));
    }

    #[test]
    fn the_bank_holiday_list_has_no_weekends() {
        for &(y, m, day) in BANK_HOLIDAYS {
            let date = Date::from_calendar_date(y, m, day).unwrap();
            assert!(!matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday), "{date}");
        }
    }

    fn valid() -> RequestInput {
        RequestInput {
            match_id: Some("m_0123abcd".into()),
            legal_basis: Some("ca1989-s47".into()),
            legal_basis_detail: None,
            reason: Some("Strategy discussion tomorrow".into()),
            urgency: Some("urgent".into()),
            case_ref: None,
        }
    }

    #[test]
    fn a_valid_request_parses() {
        let r = valid().into_new().unwrap();
        assert_eq!(r.legal_basis, LegalBasis::Ca1989S47);
        assert_eq!(r.urgency, Urgency::Urgent);
    }

    #[test]
    fn every_bad_field_of_a_request_is_named() {
        let fields = |input: RequestInput| -> Vec<String> {
            input.into_new().unwrap_err().into_iter().map(|e| e.field).collect()
        };
        assert_eq!(
            fields(RequestInput::default()),
            ["match_id", "legal_basis", "reason", "urgency"].map(String::from).to_vec()
        );
        let bad = RequestInput {
            legal_basis: Some("gut-feeling".into()),
            urgency: Some("whenever".into()),
            reason: Some("x".repeat(501)),
            ..valid()
        };
        assert_eq!(fields(bad), ["legal_basis", "reason", "urgency"].map(String::from).to_vec());
        let other = RequestInput { legal_basis: Some("other".into()), ..valid() };
        assert_eq!(fields(other), vec!["legal_basis_detail".to_string()]);
        let with_detail =
            RequestInput { legal_basis: Some("other".into()), legal_basis_detail: Some("s85".into()), ..valid() };
        assert!(with_detail.into_new().is_ok());
    }

    #[test]
    fn each_step_accepts_only_its_own_fields() {
        let now = ms(datetime!(2026-11-24 09:00 UTC));
        let decline = StepInput { reason: None, ..StepInput::default() };
        assert_eq!(decline.into_step(Action::Decline, now).unwrap_err()[0].field, "reason");
        let fulfil =
            StepInput { how: Some("secure-email".into()), reference: Some("TX-1".into()), ..Default::default() };
        let step = fulfil.into_step(Action::Fulfil, now).unwrap();
        assert_eq!(step.how, Some(FulfilMethod::SecureEmail));
        assert_eq!(step.sent_at, Some(now));
        let no_how = StepInput::default().into_step(Action::Fulfil, now).unwrap_err();
        assert_eq!(no_how[0].field, "how");
        let stray = StepInput { how: Some("post".into()), ..Default::default() };
        assert_eq!(stray.into_step(Action::Acknowledge, now).unwrap_err()[0].code, "not_allowed");
        let future =
            StepInput { how: Some("post".into()), sent_at: Some("2026-11-25T09:00:00Z".into()), ..Default::default() };
        assert_eq!(future.into_step(Action::Fulfil, now).unwrap_err()[0].field, "sent_at");
        assert!(StepInput::default().into_step(Action::Withdraw, now).is_ok());
    }
}
