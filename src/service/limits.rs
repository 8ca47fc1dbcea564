//! Lookup rate limits: per user and per organisation (burst and sustained, in memory on each
//! node, via governor), and a daily quota per user counted from the audit trail in the
//! database, so it holds however many nodes share one PostgreSQL. Every limit counts subjects
//! asked, not requests: a family lookup of eight children and four carers costs twelve, so a
//! family cannot test many guesses (e.g. one child at many postcodes) for the price of one.

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

    /// The in-memory limits (burst and sustained) for a lookup of `subjects` subjects, user
    /// first. A lookup larger than a whole burst costs the whole burst (it needs a full bucket).
    pub fn check(&self, user_id: i64, org_id: i64, subjects: u32) -> Result<(), Refusal> {
        if !self.settings.enabled {
            return Ok(());
        }
        let user_cost = nz(subjects.min(self.settings.user_lookup_burst));
        if let Err(wait) = take(&self.per_user, user_id, user_cost) {
            return Err(Refusal {
                limit: "user_rate",
                retry_after_secs: wait,
                message: format!(
                    "you have looked up {} children or carers in a short time; please wait {wait} seconds and try again",
                    self.settings.user_lookup_burst
                ),
            });
        }
        let org_cost = nz(subjects.min(self.settings.org_lookup_burst));
        if let Err(wait) = take(&self.per_org, org_id, org_cost) {
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

    /// The daily quota, given how many subjects the user has asked about since midnight (UTC)
    /// and how many this lookup asks.
    pub fn check_daily(&self, used_today: i64, subjects: u32, secs_to_midnight: u64) -> Result<(), Refusal> {
        if !self.settings.enabled
            || used_today.saturating_add(i64::from(subjects)) <= i64::from(self.settings.user_daily_lookups)
        {
            return Ok(());
        }
        Err(Refusal {
            limit: "user_daily",
            retry_after_secs: secs_to_midnight.max(1),
            message: format!(
                "you have reached today's limit of {} lookups (each child or carer asked about counts as one); \
                 it resets at midnight (UTC). If you need more, ask your organisation's admin",
                self.settings.user_daily_lookups
            ),
        })
    }
}

/// Takes `cost` cells from `key`'s bucket, or says how many seconds to wait.
fn take(limiter: &DefaultKeyedRateLimiter<i64>, key: i64, cost: NonZeroU32) -> Result<(), u64> {
    match limiter.check_key_n(&key, cost) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now()).as_secs() + 1),
        // The cost is capped at the burst, so this cannot happen; refuse rather than wave through.
        Err(_) => Err(60),
    }
}
