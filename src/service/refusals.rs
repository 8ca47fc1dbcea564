//! What a refused caller can make the audit trail store. Each refusal still happens; but per user
//! and kind of refusal, only the first few in a minute are recorded one by one. The rest are
//! counted, and the count is written as one summary event of the same type (with that user's
//! next refusal after the minute), so a token hammering a forbidden route costs the trail a few
//! events a minute, not hundreds a second.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::json;

use super::{Service, ServiceResult};
use crate::audit::{EventType, NewEvent};
use crate::clock::Millis;
use crate::domain::user::Actor;

const WINDOW_MS: Millis = 60_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Millis,
    recorded: u32,
    unrecorded: u64,
}

/// Per (user, event type): how many refusals this minute were recorded, and how many were not.
pub struct RefusalThrottle {
    per_minute: u32,
    enabled: bool,
    windows: Mutex<HashMap<(i64, EventType), Window>>,
}

/// What to write for one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Record this refusal's own event.
    pub record: bool,
    /// A finished minute's refusals that were counted but not recorded: (from, to, how many).
    pub summary: Option<(Millis, Millis, u64)>,
}

impl RefusalThrottle {
    pub fn new(per_minute: u32, enabled: bool) -> RefusalThrottle {
        RefusalThrottle { per_minute: per_minute.max(1), enabled, windows: Mutex::new(HashMap::new()) }
    }

    pub fn decide(&self, user_id: i64, kind: EventType, now: Millis) -> Decision {
        if !self.enabled {
            return Decision { record: true, summary: None };
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() > 10_000 {
            // Quiet users' finished windows with nothing pending can go.
            windows.retain(|_, w| w.unrecorded > 0 || now - w.started < WINDOW_MS);
        }
        let window = windows.entry((user_id, kind)).or_insert(Window { started: now, recorded: 0, unrecorded: 0 });
        let mut summary = None;
        if now - window.started >= WINDOW_MS {
            if window.unrecorded > 0 {
                summary = Some((window.started, now, window.unrecorded));
            }
            *window = Window { started: now, recorded: 0, unrecorded: 0 };
        }
        let record = window.recorded < self.per_minute;
        if record {
            window.recorded += 1;
        } else {
            window.unrecorded += 1;
        }
        Decision { record, summary }
    }
}

impl Service {
    /// Audits a refusal of `actor` (access denied, rate limited) through the throttle.
    pub async fn record_refusal(&self, actor: &Actor, event: NewEvent) -> ServiceResult<()> {
        let decision = self.refusals.decide(actor.user_id, event.kind, self.clock.now_ms());
        if let Some((from, to, count)) = decision.summary {
            let summary = NewEvent::new(event.kind)
                .by(actor)
                .details(json!({"summary": true, "unrecorded_refusals": count, "from": from, "to": to}));
            self.audit.record(summary).await?;
        }
        if decision.record {
            self.audit.record(event).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_allowance_refusals_are_counted_and_summarised_after_the_minute() {
        let throttle = RefusalThrottle::new(3, true);
        let decisions: Vec<Decision> = (0..10).map(|i| throttle.decide(1, EventType::AccessDenied, i)).collect();
        assert_eq!(decisions.iter().filter(|d| d.record).count(), 3);
        assert!(decisions.iter().all(|d| d.summary.is_none()));
        assert!(throttle.decide(2, EventType::AccessDenied, 20).record, "another user has their own allowance");
        assert!(throttle.decide(1, EventType::RateLimited, 20).record, "another kind has its own allowance");
        let next = throttle.decide(1, EventType::AccessDenied, 60_000);
        assert_eq!(next, Decision { record: true, summary: Some((0, 60_000, 7)) });
        let after = throttle.decide(1, EventType::AccessDenied, 60_001);
        assert_eq!(after.summary, None, "a summary is written once");
    }

    #[test]
    fn with_rate_limits_off_every_refusal_is_recorded() {
        let throttle = RefusalThrottle::new(1, false);
        assert!((0..5).all(|i| throttle.decide(1, EventType::AccessDenied, i).record));
    }
}
