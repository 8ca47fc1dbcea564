//! child-locator: a privacy-preserving national index of which organisation knows a child.
//!
//! Data flows one way: `http` / `cli` (the edges) → `service` (the use cases, the only door) →
//! `domain` (pure decisions) + `store` (persistence) + `audit` (the signed trail). Where each
//! decision is made (input, identity, route × role, matching, disclosure, state changes, errors)
//! is tabled in docs/architecture.md. `tests/suite/architecture.rs` holds the house to it: the
//! flow, a pure domain, nothing from `store` in `http` or `cli`, and no import cycle between files.

pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod http;
pub mod keys;
pub mod service;
pub mod store;
pub mod telemetry;
