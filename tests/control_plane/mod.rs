//! The control plane (API server, controllers, CLI) seen from outside:
//! `--no-node` servers started from the built binary, driven through the
//! `minik8s` CLI and plain HTTP. No root needed; every test has its own
//! server, port and data dir.

mod bad_input;
mod chapter;
mod cli_pipe;
mod crash;
mod table_text;
