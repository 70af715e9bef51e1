//! The `steward-agent` binary; everything is in the library.

fn main() -> std::process::ExitCode {
    steward_agent::main()
}
