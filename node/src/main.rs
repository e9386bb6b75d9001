//! `attesta-node`: the compute node's command line (`attesta-node --help`).

use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    // The sandboxed worker is this same binary. It must branch off first: before tracing, clap or
    // any runtime starts a thread, so the seccomp filter covers the only thread there is.
    if std::env::args_os().nth(1).is_some_and(|a| a == attesta_node::sandbox::WORKER_ARG) {
        return attesta_node::sandbox::worker_main();
    }
    cli::main()
}
