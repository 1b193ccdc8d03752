//! The pod runner (kubelet) of minik8s: runs the Pods bound to its node as
//! processes in network sandboxes, reports their status, serves logs, exec
//! and attach.
//!
//! Wiring: `Kubelet::new(config, client, network)`, hand `pod_io()` to the
//! API server, then `run(shutdown)`. Built-in images run as
//! `minik8s __image <name> [args...]`, dispatched to `builtin_image_main`.

mod backoff;
mod checkpoint;
mod config;
mod container_env;
mod container_io;
mod container_runs;
mod container_slot;
mod events;
mod images;
mod kubelet;
mod log_reader;
mod logs;
mod netns;
mod network;
mod node_status;
mod pod_files;
mod pod_io;
mod pod_stop;
mod pod_table;
mod pod_worker;
mod probe_checks;
mod probes;
mod process;
mod pty;
mod service_env;
mod sessions;
mod status;
mod status_writer;

pub use config::KubeletConfig;
pub use images::builtin_image_main;
pub use kubelet::Kubelet;
pub use network::{node_network, PodSandbox, SandboxNetwork};
