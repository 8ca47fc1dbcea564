//! The `locator` binary: parse the command line and hand over to the library.

fn main() -> std::process::ExitCode {
    child_locator::cli::main()
}
