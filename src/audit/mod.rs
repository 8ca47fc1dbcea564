//! The tamper-evident audit trail: every security-relevant event, appended to an RFC 9162
//! Merkle log whose head is signed on every commit. Nothing here ever holds an identifier.

pub mod checkpoint;
pub mod derived;
pub mod event;
pub mod export;
pub mod leaf;
pub mod merkle;
pub mod nodes;
pub mod rollback;
pub mod stored;
pub mod verify;
pub mod witness;
pub mod writer;

pub use event::{Attachment, EventType, NewEvent};
pub use writer::{AuditError, AuditLog};
