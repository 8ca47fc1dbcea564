//! Anomaly rules for information governance review: which lookups look out of the ordinary,
//! and why, in words. Pure: the store supplies the facts, the clock supplies nothing here.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset, Weekday};

use crate::clock::{Millis, to_datetime};

const DAY_MS: Millis = 86_400_000;

/// The thresholds, with the defaults docs/audit.md explains.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyRules {
    /// Office hours start at this UK local hour (inclusive)...
    pub day_starts_hour: u8,
    /// ...and end at this one (exclusive).
    pub day_ends_hour: u8,
    /// Saturdays and Sundays are out of hours all day.
    pub weekends_out_of_hours: bool,
    /// A day's lookups are flagged above `volume_multiplier` × the user's usual day...
    pub volume_multiplier: f64,
    /// ...and above this floor, so a quiet user's busy morning is not an anomaly.
    pub volume_floor: u32,
    /// The usual day is the median over this many previous days (days without lookups count).
    pub norm_days: u32,
    /// More than this many lookups of one child by one user in the window is flagged...
    pub repeat_limit: u32,
    /// ...within this many milliseconds.
    pub repeat_window_ms: Millis,
}

impl Default for AnomalyRules {
    fn default() -> Self {
        AnomalyRules {
            day_starts_hour: 8,
            day_ends_hour: 18,
            weekends_out_of_hours: true,
            volume_multiplier: 3.0,
            volume_floor: 10,
            norm_days: 28,
            repeat_limit: 3,
            repeat_window_ms: 7 * DAY_MS,
        }
    }
}

impl AnomalyRules {
    /// How far before a window the facts must reach for the norms and repeats to be right.
    pub fn history_ms(&self) -> Millis {
        (Millis::from(self.norm_days) + 1) * DAY_MS + self.repeat_window_ms
    }
}

/// One lookup as the rules see it: no identifier, only the pseudonyms it asked.
#[derive(Debug, Clone)]
pub struct LookupFact {
    pub seq: i64,
    pub at: Millis,
    pub user_id: i64,
    pub purpose: Option<String>,
    pub purpose_detail: Option<String>,
    pub token_reported_lost: bool,
    /// The exact-form pseudonyms asked: two lookups sharing one asked about the same child.
    pub child_keys: Vec<Vec<u8>>,
    /// Whether a record request followed this lookup. Requests are not built yet, so the store
    /// says `false`; when they are, repeated lookups followed by a request stop being flagged.
    pub request_followed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    OutOfHours,
    VolumeAboveNorm,
    RepeatedLookupsOfOneChild,
    OtherPurpose,
    AfterTokenReportedLost,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::OutOfHours => "out-of-hours",
            Rule::VolumeAboveNorm => "volume-above-norm",
            Rule::RepeatedLookupsOfOneChild => "repeated-lookups-of-one-child",
            Rule::OtherPurpose => "other-purpose",
            Rule::AfterTokenReportedLost => "after-token-reported-lost",
        }
    }
}

/// One flag on one lookup event, with the reason in words.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    pub seq: i64,
    pub at: Millis,
    pub user_id: i64,
    pub rule: Rule,
    pub reason: String,
}

/// Flags the lookups made in `[from, to)`. `facts` may (and for norms and repeats should)
/// reach back `rules.history_ms()` before `from`; facts outside the window are never flagged.
/// The answer is in log order, then by rule.
pub fn detect(facts: &[LookupFact], from: Millis, to: Millis, rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut facts: Vec<&LookupFact> = facts.iter().collect();
    facts.sort_by_key(|f| (f.at, f.seq));
    let in_window = |f: &LookupFact| f.at >= from && f.at < to;
    let mut out = Vec::new();
    for f in facts.iter().filter(|f| in_window(f)) {
        if let Some(reason) = out_of_hours(f.at, rules) {
            out.push(flag(f, Rule::OutOfHours, reason));
        }
        if f.purpose.as_deref() == Some("other") {
            let detail = f.purpose_detail.as_deref().unwrap_or("no detail given");
            out.push(flag(f, Rule::OtherPurpose, format!("purpose was `other`: \"{detail}\"")));
        }
        if f.token_reported_lost {
            out.push(flag(
                f,
                Rule::AfterTokenReportedLost,
                "made with a token that had already been reported lost".to_string(),
            ));
        }
    }
    out.extend(volume_above_norm(&facts, rules).into_iter().filter(|a| a.at >= from && a.at < to));
    out.extend(repeated_lookups(&facts, rules).into_iter().filter(|a| a.at >= from && a.at < to));
    out.sort_by_key(|a| (a.at, a.seq, a.rule));
    out
}

fn flag(f: &LookupFact, rule: Rule, reason: String) -> Anomaly {
    Anomaly { seq: f.seq, at: f.at, user_id: f.user_id, rule, reason }
}

fn out_of_hours(at: Millis, rules: &AnomalyRules) -> Option<String> {
    let local = uk_local(at);
    let weekend = matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday);
    let hour = local.hour();
    let outside = hour < rules.day_starts_hour || hour >= rules.day_ends_hour;
    if !(outside || (weekend && rules.weekends_out_of_hours)) {
        return None;
    }
    let days = if rules.weekends_out_of_hours { " Monday to Friday" } else { "" };
    Some(format!(
        "at {:02}:{:02} on a {} (UK time); office hours are {:02}:00 to {:02}:00{days}",
        hour,
        local.minute(),
        local.weekday(),
        rules.day_starts_hour,
        rules.day_ends_hour
    ))
}

/// UK civil time: GMT, or BST (UTC+1) from 01:00 UTC on the last Sunday of March to 01:00 UTC
/// on the last Sunday of October (the rule since 1996). Bank holidays are not modelled.
pub fn uk_local(at: Millis) -> OffsetDateTime {
    let utc = to_datetime(at);
    let year = utc.year();
    let starts = last_sunday(year, Month::March).midnight().assume_utc() + Duration::hours(1);
    let ends = last_sunday(year, Month::October).midnight().assume_utc() + Duration::hours(1);
    let offset = if utc >= starts && utc < ends { UtcOffset::from_hms(1, 0, 0) } else { Ok(UtcOffset::UTC) };
    utc.to_offset(offset.unwrap_or(UtcOffset::UTC))
}

fn last_sunday(year: i32, month: Month) -> Date {
    let last_day = month.length(year);
    let date = Date::from_calendar_date(year, month, last_day).unwrap_or(Date::MIN);
    let back = i64::from(date.weekday().number_days_from_sunday());
    date - Duration::days(back)
}

/// A user's day far above their own usual day: more than `multiplier` × the median of their
/// daily counts over the previous `norm_days` days, and more than the floor. The lookup that
/// crossed the line is flagged, once a day.
fn volume_above_norm(facts: &[&LookupFact], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut per_user: HashMap<i64, BTreeMap<Date, Vec<&LookupFact>>> = HashMap::new();
    for f in facts {
        per_user.entry(f.user_id).or_default().entry(uk_local(f.at).date()).or_default().push(f);
    }
    let mut out = Vec::new();
    for days in per_user.values() {
        for (day, lookups) in days {
            let mut history: Vec<usize> = (1..=i64::from(rules.norm_days))
                .map(|back| days.get(&(*day - Duration::days(back))).map_or(0, Vec::len))
                .collect();
            history.sort_unstable();
            let median = median(&history);
            let limit = (rules.volume_multiplier * median).max(f64::from(rules.volume_floor));
            if (lookups.len() as f64) <= limit {
                continue;
            }
            // The first lookup past the limit: floor(limit) lookups were within it.
            let crossing = (limit.floor() as usize).min(lookups.len().saturating_sub(1));
            if let Some(f) = lookups.get(crossing) {
                out.push(flag(
                    f,
                    Rule::VolumeAboveNorm,
                    format!(
                        "{} lookups on {day} by this user, against a usual {median} a day (median of the previous {} days); \
                         flagged above {limit}",
                        lookups.len(),
                        rules.norm_days
                    ),
                ));
            }
        }
    }
    out
}

fn median(sorted: &[usize]) -> f64 {
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2] as f64,
        n => (sorted[n / 2 - 1] + sorted[n / 2]) as f64 / 2.0,
    }
}

/// Per (user, pseudonym asked), the earlier lookups as (time, seq).
type AskedBefore<'a> = HashMap<(i64, &'a [u8]), Vec<(Millis, i64)>>;

/// More than `repeat_limit` lookups of one child (sharing an asked pseudonym) by one user
/// within the window, none followed by a record request: every lookup past the limit is flagged.
fn repeated_lookups(facts: &[&LookupFact], rules: &AnomalyRules) -> Vec<Anomaly> {
    let mut out = Vec::new();
    // Per user and key, the earlier lookups (time, seq) that asked it and led to no request.
    let mut seen: AskedBefore = HashMap::new();
    for f in facts {
        let mut earlier: HashSet<i64> = HashSet::new();
        for key in &f.child_keys {
            if let Some(list) = seen.get(&(f.user_id, key.as_slice())) {
                earlier.extend(list.iter().filter(|(at, _)| f.at - at <= rules.repeat_window_ms).map(|(_, s)| *s));
            }
        }
        if !f.request_followed && earlier.len() >= rules.repeat_limit as usize {
            let days = rules.repeat_window_ms / DAY_MS;
            out.push(flag(
                f,
                Rule::RepeatedLookupsOfOneChild,
                format!(
                    "lookup number {} of the same child by this user within {days} days, and no record request followed",
                    earlier.len() + 1
                ),
            ));
        }
        if !f.request_followed {
            for key in &f.child_keys {
                seen.entry((f.user_id, key.as_slice())).or_default().push((f.at, f.seq));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-24T09:00:00Z, a Tuesday (GMT).
    const TUESDAY_9AM: Millis = 1_795_510_800_000;
    const HOUR: Millis = 3_600_000;

    fn fact(seq: i64, at: Millis, user_id: i64) -> LookupFact {
        LookupFact {
            seq,
            at,
            user_id,
            purpose: Some("s47-enquiry".into()),
            purpose_detail: None,
            token_reported_lost: false,
            child_keys: vec![seq.to_le_bytes().to_vec()],
            request_followed: false,
        }
    }

    fn rules_of(anomalies: &[Anomaly]) -> Vec<(i64, Rule)> {
        anomalies.iter().map(|a| (a.seq, a.rule)).collect()
    }

    fn all(facts: &[LookupFact]) -> Vec<Anomaly> {
        detect(facts, i64::MIN / 2, i64::MAX / 2, &AnomalyRules::default())
    }

    #[test]
    fn an_ordinary_weekday_lookup_raises_nothing() {
        assert!(all(&[fact(1, TUESDAY_9AM, 7)]).is_empty());
    }

    #[test]
    fn evenings_early_mornings_and_weekends_are_out_of_hours() {
        let facts = [
            fact(1, TUESDAY_9AM + 9 * HOUR, 7),      // 18:00 Tuesday
            fact(2, TUESDAY_9AM - 2 * HOUR, 7),      // 07:00 Tuesday
            fact(3, TUESDAY_9AM + 4 * 24 * HOUR, 7), // 09:00 Saturday
            fact(4, TUESDAY_9AM + 8 * HOUR, 7),      // 17:00 Tuesday: in hours
        ];
        let found = all(&facts);
        assert_eq!(rules_of(&found), vec![(2, Rule::OutOfHours), (1, Rule::OutOfHours), (3, Rule::OutOfHours)]);
        assert!(found[2].reason.contains("Saturday"), "{}", found[2].reason);
    }

    #[test]
    fn summer_time_is_taken_into_account() {
        // 2026-07-14T07:30Z is 08:30 BST: in hours. 2026-07-14T17:30Z is 18:30 BST: out.
        let morning = 1_784_014_200_000;
        assert_eq!(uk_local(morning).hour(), 8);
        assert!(all(&[fact(1, morning, 7)]).is_empty());
        assert_eq!(rules_of(&all(&[fact(1, morning + 10 * HOUR, 7)])), vec![(1, Rule::OutOfHours)]);
        // The changes happen on the last Sundays of March and October at 01:00 UTC.
        assert_eq!(last_sunday(2026, Month::March), Date::from_calendar_date(2026, Month::March, 29).unwrap());
        assert_eq!(last_sunday(2026, Month::October), Date::from_calendar_date(2026, Month::October, 25).unwrap());
    }

    #[test]
    fn other_purposes_and_lost_tokens_are_flagged_with_the_reason() {
        let mut other = fact(1, TUESDAY_9AM, 7);
        other.purpose = Some("other".into());
        other.purpose_detail = Some("checking for a colleague".into());
        let mut lost = fact(2, TUESDAY_9AM + HOUR, 7);
        lost.token_reported_lost = true;
        let found = all(&[other, lost]);
        assert_eq!(rules_of(&found), vec![(1, Rule::OtherPurpose), (2, Rule::AfterTokenReportedLost)]);
        assert!(found[0].reason.contains("checking for a colleague"));
    }

    /// `per_day` lookups on each of the 28 days before the Tuesday, then `today` on it.
    fn volume(per_day: usize, today: usize) -> Vec<LookupFact> {
        let mut facts = Vec::new();
        let mut seq = 0;
        for back in 1..=28 {
            for i in 0..per_day {
                seq += 1;
                facts.push(fact(seq, TUESDAY_9AM - back * 24 * HOUR + i as i64 * 60_000, 7));
            }
        }
        for i in 0..today {
            seq += 1;
            facts.push(fact(seq, TUESDAY_9AM + i as i64 * 60_000, 7));
        }
        facts
    }

    fn volume_flags(facts: &[LookupFact]) -> Vec<Anomaly> {
        detect(facts, TUESDAY_9AM, TUESDAY_9AM + 24 * HOUR, &AnomalyRules::default())
            .into_iter()
            .filter(|a| a.rule == Rule::VolumeAboveNorm)
            .collect()
    }

    #[test]
    fn a_day_far_above_the_users_own_norm_is_flagged_once_at_the_crossing() {
        // Usual day 5: the limit is 15, so the 16th lookup is flagged.
        let facts = volume(5, 20);
        let flags = volume_flags(&facts);
        assert_eq!(flags.len(), 1, "{flags:?}");
        let sixteenth = &facts[28 * 5 + 15];
        assert_eq!(flags[0].seq, sixteenth.seq);
        assert!(flags[0].reason.contains("20 lookups") && flags[0].reason.contains("usual 5"), "{}", flags[0].reason);
    }

    #[test]
    fn a_busy_day_within_three_times_the_norm_or_the_floor_is_not_flagged() {
        assert!(volume_flags(&volume(5, 15)).is_empty(), "exactly 3x the norm");
        assert!(volume_flags(&volume(0, 10)).is_empty(), "at the floor");
        assert_eq!(volume_flags(&volume(0, 11)).len(), 1, "a new user's 11th lookup in a day");
    }

    #[test]
    fn the_fourth_lookup_of_one_child_in_a_week_is_flagged() {
        let key = b"child-a".to_vec();
        let mut facts: Vec<LookupFact> = (0..5)
            .map(|i| {
                let mut f = fact(i + 1, TUESDAY_9AM + i * 24 * HOUR / 2, 7);
                f.child_keys = vec![key.clone()];
                f
            })
            .collect();
        // Another user asking about the same child does not add to this user's count.
        let mut other_user = fact(9, TUESDAY_9AM + HOUR, 8);
        other_user.child_keys = vec![key.clone()];
        facts.push(other_user);
        let flagged: Vec<i64> =
            all(&facts).into_iter().filter(|a| a.rule == Rule::RepeatedLookupsOfOneChild).map(|a| a.seq).collect();
        assert_eq!(flagged, vec![4, 5]);
    }

    #[test]
    fn repeated_lookups_spread_over_more_than_a_week_are_not_flagged() {
        let key = b"child-a".to_vec();
        let facts: Vec<LookupFact> = (0..4)
            .map(|i| {
                let mut f = fact(i + 1, TUESDAY_9AM + i * 3 * 24 * HOUR, 7);
                f.child_keys = vec![key.clone()];
                f
            })
            .collect();
        assert!(all(&facts).iter().all(|a| a.rule != Rule::RepeatedLookupsOfOneChild));
    }

    #[test]
    fn repeated_lookups_followed_by_a_request_are_explained() {
        let key = b"child-a".to_vec();
        let facts: Vec<LookupFact> = (0..4)
            .map(|i| {
                let mut f = fact(i + 1, TUESDAY_9AM + i * HOUR, 7);
                f.child_keys = vec![key.clone()];
                f.request_followed = i == 1;
                f
            })
            .collect();
        assert!(all(&facts).iter().all(|a| a.rule != Rule::RepeatedLookupsOfOneChild));
    }

    #[test]
    fn facts_before_the_window_inform_norms_but_are_never_flagged() {
        let mut early = fact(1, TUESDAY_9AM - 24 * HOUR - 3 * HOUR, 7);
        early.purpose = Some("other".into());
        let found = detect(&[early], TUESDAY_9AM, TUESDAY_9AM + HOUR, &AnomalyRules::default());
        assert!(found.is_empty());
    }
}
