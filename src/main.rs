//! The `portprobe` binary: all the work is in the library.

fn main() -> std::process::ExitCode {
    portprobe::cli::main()
}
