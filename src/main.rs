//! `minik8s`: one binary that is a small Kubernetes control plane and node
//! (`minik8s server`) and the client that talks to it (`minik8s get ...`).

mod server;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "minik8s",
    version,
    about = "A miniature Kubernetes on one Linux machine, for running a book's Service chapter",
    long_about = None
)]
struct Cli {
    #[command(flatten)]
    global: ctl::GlobalOptions,
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run the API server, controllers and the node (needs root).
    Server(server::ServerArgs),
    /// Run a built-in container image inside a Pod sandbox (internal: the
    /// pod runner starts containers this way).
    #[command(name = "__image", hide = true)]
    Image {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    #[command(flatten)]
    Ctl(ctl::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Top::Image { args } => ExitCode::from(exit_byte(kubelet::builtin_image_main(&args))),
        Top::Server(args) => server::main(args),
        Top::Ctl(cmd) => {
            restore_sigpipe();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let code = rt.block_on(ctl::run(cmd, cli.global));
            ExitCode::from(exit_byte(code))
        }
    }
}

/// Rust ignores SIGPIPE, so printing into a closed pipe (`minik8s get pods
/// | head -1`) is an error, and `println!` turns it into a panic with a
/// backtrace. A command-line client should end quietly instead, as
/// kubectl and other Unix tools do: the default action of SIGPIPE. Only
/// for the client: the server must outlive its clients' closed sockets
/// (which Rust writes with MSG_NOSIGNAL anyway).
fn restore_sigpipe() {
    // SAFETY: setting a signal's disposition to its default has no
    // memory effects; no handler is installed.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn exit_byte(code: i32) -> u8 {
    u8::try_from(code).unwrap_or(1)
}
