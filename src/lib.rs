//! child-locator: a privacy-preserving national index of which organisation knows a child.
//! Layers: `domain` (pure decisions) ← `store` (persistence) ← `http` / `cli` (edges).

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
