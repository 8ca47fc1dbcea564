//! The product's ideas as pure values and decisions: no I/O, no axum, no sqlx.
//! Input is parsed into these types at the edge, so nothing deeper re-checks it.

pub mod anomaly;
pub mod area;
pub mod case_ref;
pub mod client;
pub mod cursor;
pub mod enumeration;
pub mod error;
pub mod holding;
pub mod identity;
pub mod identity_provider;
pub mod input;
pub mod keyring;
pub mod lookup;
pub mod matching;
pub mod organisation;
pub mod policy;
pub mod request;
pub mod role;
pub mod sync;
pub mod token;
pub mod user;
pub mod webhook;
pub mod widen;

pub use error::FieldError;
