//! What a refused caller can make the audit trail store. Each refusal still happens; but per user
//! and kind of refusal, only the first few in a minute are recorded one by one. The rest are
//! counted, and the count is written as one summary event of the same type once the minute is
//! over (with that user's next refusal, or by the node's background pass, whichever is first),
//! so a token hammering a forbidden route costs the trail a few events a minute, not hundreds a
//! second.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::event::ActorRef;
use crate::audit::{EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::user::Actor;

const WINDOW_MS: Millis = 60_000;

#[derive(Debug, Clone)]
struct Window {
    actor: ActorRef,
    started: Millis,
    recorded: u32,
    unrecorded: u64,
}

/// A finished minute's refusals that were counted but not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unrecorded {
    pub actor: ActorRef,
    pub kind: EventType,
    pub from: Millis,
    pub to: Millis,
    pub count: u64,
}

/// Per (user, event type): how many refusals this minute were recorded, and how many were not.
pub struct RefusalThrottle {
    per_minute: u32,
    enabled: bool,
    windows: Mutex<HashMap<(i64, EventType), Window>>,
}

/// What to write for one refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Record this refusal's own event.
    pub record: bool,
    /// The previous minute's unrecorded refusals, to be written first.
    pub summary: Option<Unrecorded>,
}

impl RefusalThrottle {
    pub fn new(per_minute: u32, enabled: bool) -> RefusalThrottle {
        RefusalThrottle { per_minute: per_minute.max(1), enabled, windows: Mutex::new(HashMap::new()) }
    }

    pub fn decide(&self, actor: &ActorRef, kind: EventType, now: Millis) -> Decision {
        if !self.enabled {
            return Decision { record: true, summary: None };
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            // Quiet users' finished windows with nothing pending can go.
            windows.retain(|_, w| w.unrecorded > 0 || now - w.started < WINDOW_MS);
        }
        let fresh = || Window { actor: actor.clone(), started: now, recorded: 0, unrecorded: 0 };
        let window = windows.entry((actor.user_id, kind)).or_insert_with(fresh);
        let mut summary = None;
        if now - window.started >= WINDOW_MS {
            if window.unrecorded > 0 {
                summary = Some(unrecorded(window, kind, now));
            }
            *window = fresh();
        }
        let record = window.recorded < self.per_minute;
        if record {
            window.recorded += 1;
        } else {
            window.unrecorded += 1;
        }
        Decision { record, summary }
    }

    /// Takes every finished minute that still has unrecorded refusals (for the background pass).
    pub fn take_finished(&self, now: Millis) -> Vec<Unrecorded> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let finished: Vec<(i64, EventType)> = windows
            .iter()
            .filter(|(_, w)| w.unrecorded > 0 && now - w.started >= WINDOW_MS)
            .map(|(key, _)| *key)
            .collect();
        finished
            .into_iter()
            .filter_map(|(user, kind)| windows.remove(&(user, kind)).map(|w| unrecorded(&w, kind, now)))
            .collect()
    }
}

fn unrecorded(window: &Window, kind: EventType, now: Millis) -> Unrecorded {
    Unrecorded { actor: window.actor.clone(), kind, from: window.started, to: now, count: window.unrecorded }
}

fn summary_event(u: Unrecorded) -> NewEvent {
    let mut event = NewEvent::new(u.kind)
        .details(json!({"summary": true, "unrecorded_refusals": u.count, "from": u.from, "to": u.to}));
    event.actor = Some(u.actor);
    event
}

impl Service {
    /// Audits a refusal of `actor` (access denied, rate limited) through the throttle.
    pub async fn record_refusal(&self, actor: &Actor, event: NewEvent) -> ServiceResult<()> {
        let decision = self.refusals.decide(&ActorRef::from(actor), event.kind, self.clock.now_ms());
        if let Some(summary) = decision.summary {
            self.audit.record(summary_event(summary)).await?;
        }
        if decision.record {
            self.audit.record(event).await?;
        }
        Ok(())
    }

    /// Writes the summaries of finished minutes whose users have not been refused since; the
    /// background pass calls it, so a count is written even when its caller stops.
    pub async fn flush_refusal_summaries(&self) -> ServiceResult<usize> {
        let finished = self.refusals.take_finished(self.clock.now_ms());
        let written = finished.len();
        for summary in finished {
            self.audit.record(summary_event(summary)).await?;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(user_id: i64) -> ActorRef {
        ActorRef { user_id, org_id: 1, org_code: "E1".into(), role: "practitioner".into() }
    }

    #[test]
    fn past_the_allowance_refusals_are_counted_and_summarised_after_the_minute() {
        let throttle = RefusalThrottle::new(3, true);
        let decisions: Vec<Decision> = (0..10).map(|i| throttle.decide(&user(1), EventType::AccessDenied, i)).collect();
        assert_eq!(decisions.iter().filter(|d| d.record).count(), 3);
        assert!(decisions.iter().all(|d| d.summary.is_none()));
        assert!(throttle.decide(&user(2), EventType::AccessDenied, 20).record, "another user has their own allowance");
        assert!(throttle.decide(&user(1), EventType::RateLimited, 20).record, "another kind has its own allowance");
        let next = throttle.decide(&user(1), EventType::AccessDenied, 60_000);
        let expected = Unrecorded { actor: user(1), kind: EventType::AccessDenied, from: 0, to: 60_000, count: 7 };
        assert_eq!(next, Decision { record: true, summary: Some(expected) });
        let after = throttle.decide(&user(1), EventType::AccessDenied, 60_001);
        assert_eq!(after.summary, None, "a summary is written once");
    }

    #[test]
    fn a_finished_minute_is_taken_once_by_the_background_pass() {
        let throttle = RefusalThrottle::new(1, true);
        for i in 0..5 {
            throttle.decide(&user(1), EventType::AccessDenied, i);
        }
        assert!(throttle.take_finished(59_999).is_empty(), "not before the minute is over");
        let taken = throttle.take_finished(60_000);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].count, taken[0].actor.user_id), (4, 1));
        assert!(throttle.take_finished(120_000).is_empty());
        assert!(throttle.decide(&user(1), EventType::AccessDenied, 120_001).summary.is_none(), "nor twice");
    }

    #[test]
    fn with_rate_limits_off_every_refusal_is_recorded() {
        let throttle = RefusalThrottle::new(1, false);
        assert!((0..5).all(|i| throttle.decide(&user(1), EventType::AccessDenied, i).record));
    }
}
