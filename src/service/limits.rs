//! Lookup rate limits: per user and per organisation (burst and sustained, in memory on each
//! node, via governor), and a daily quota per user counted from the audit trail in the
//! database, so it holds however many nodes share one PostgreSQL.

use std::num::NonZeroU32;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;

/// Why a lookup was refused, in words a worker understands, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub limit: &'static str,
    pub retry_after_secs: u64,
    pub message: String,
}

pub struct Limiter {
    settings: Limits,
    per_user: DefaultKeyedRateLimiter<i64>,
    per_org: DefaultKeyedRateLimiter<i64>,
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

impl Limiter {
    pub fn new(settings: &Limits) -> Limiter {
        let user = Quota::per_minute(nz(settings.user_lookups_per_minute)).allow_burst(nz(settings.user_lookup_burst));
        let org = Quota::per_minute(nz(settings.org_lookups_per_minute)).allow_burst(nz(settings.org_lookup_burst));
        Limiter { settings: settings.clone(), per_user: RateLimiter::keyed(user), per_org: RateLimiter::keyed(org) }
    }

    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    pub fn daily_quota(&self) -> u32 {
        self.settings.user_daily_lookups
    }

    /// The in-memory limits (burst and sustained), user first.
    pub fn check(&self, user_id: i64, org_id: i64) -> Result<(), Refusal> {
        if !self.settings.enabled {
            return Ok(());
        }
        let clock = DefaultClock::default();
        if let Err(not_until) = self.per_user.check_key(&user_id) {
            let wait = not_until.wait_time_from(clock.now()).as_secs() + 1;
            return Err(Refusal {
                limit: "user_rate",
                retry_after_secs: wait,
                message: format!(
                    "you have made {} lookups in a short time; please wait {wait} seconds and try again",
                    self.settings.user_lookup_burst
                ),
            });
        }
        if let Err(not_until) = self.per_org.check_key(&org_id) {
            let wait = not_until.wait_time_from(clock.now()).as_secs() + 1;
            return Err(Refusal {
                limit: "organisation_rate",
                retry_after_secs: wait,
                message: format!(
                    "your organisation is making lookups faster than allowed; please wait {wait} seconds and try again"
                ),
            });
        }
        Ok(())
    }

    /// The daily quota, given how many lookups the user has made since midnight (UTC).
    pub fn check_daily(&self, used_today: i64, secs_to_midnight: u64) -> Result<(), Refusal> {
        if !self.settings.enabled || used_today < i64::from(self.settings.user_daily_lookups) {
            return Ok(());
        }
        Err(Refusal {
            limit: "user_daily",
            retry_after_secs: secs_to_midnight.max(1),
            message: format!(
                "you have reached today's limit of {} lookups; it resets at midnight (UTC). \
                 If you need more, ask your organisation's admin",
                self.settings.user_daily_lookups
            ),
        })
    }
}
