//! child-locator: a privacy-preserving national index of which organisation knows a child.
//! Layers: `http` / `cli` (edges) → `service` (the use cases, the only door) → `domain` (pure
//! decisions) + `store` (persistence) + `audit` (the signed trail). `tests/suite/architecture.rs` checks it.

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
