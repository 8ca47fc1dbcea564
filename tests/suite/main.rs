//! The whole test suite, one binary: each file is a module, `common` the shared fixtures, and
//! `harness` the runner that names each test per engine (see docs/testing.md).

mod common;
mod harness;

mod api_access;
mod api_audit;
mod api_client_credentials;
mod api_directory;
mod api_families;
mod api_holdings;
mod api_lookups;
mod api_requests;
mod api_sync;
mod api_sync_memory;
mod api_webhooks;
mod architecture;
mod canaries;
mod cli;
mod cli_audit;
mod crash;
mod docs;
mod faults;
mod hardening;
mod key_families;
mod key_rotation;
mod oidc_sign_in;
mod store;
mod ui_browser;
mod ui_desk_acts;
mod ui_desk_answers;
mod ui_pages;
mod ui_words;
mod upgrade;

fn main() {
    harness::main();
}
