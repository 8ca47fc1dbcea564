//! The `locator` binary: parse the command line and hand over to the library.

/// mimalloc for Rust and, through its `override` feature, for the bundled SQLite's own
/// allocations too (see docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    child_locator::cli::main()
}
