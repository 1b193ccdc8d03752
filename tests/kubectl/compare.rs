//! kubectl's output next to minik8s' own for the same command: the same
//! tables (same columns, same rows, same cells; only AGE may differ, the
//! two commands run a moment apart), both laid out as kubectl lays tables
//! out.

use super::tools::Kubectl;
use crate::support::Server;
use std::time::{Duration, Instant};

// The control-plane tests' table reader, shared rather than copied; not
// every helper of it is needed here.
#[allow(dead_code)]
#[path = "../control_plane/table_text.rs"]
mod table_text;
pub use table_text::{is_age, parse_tables, PrintedTable};

const WAIT: Duration = Duration::from_secs(60);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `tables` with every AGE cell checked and blanked.
fn ages_blanked(mut tables: Vec<PrintedTable>) -> Result<Vec<PrintedTable>, String> {
    for t in &mut tables {
        if let Some(i) = t.header.iter().position(|h| h == "AGE") {
            for row in &mut t.rows {
                if !is_age(&row[i]) {
                    return Err(format!("AGE cell {:?} is not a duration", row[i]));
                }
                row[i] = "<age>".into();
            }
        }
    }
    Ok(tables)
}

/// Parse a table output, turning parse_tables' assertion into an error.
fn tables_of(out: &str) -> Result<Vec<PrintedTable>, String> {
    let out = out.to_string();
    std::panic::catch_unwind(move || parse_tables(&out)).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unparsable table".into())
    })
}

/// Run `kubectl ARGS` and `minik8s ARGS` until both succeed, print the
/// same tables modulo AGE, and `accept` the tables (the cluster may still
/// be converging). Returns kubectl's output and its tables.
pub fn same_tables(
    k: &Kubectl,
    s: &Server,
    args: &[&str],
    what: &str,
    mut accept: impl FnMut(&[PrintedTable]) -> bool,
) -> (String, Vec<PrintedTable>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let ko = k.run(args);
        let mo = s.ctl(args);
        let (kout, mout) = (text(&ko.stdout), text(&mo.stdout));
        let problem = if !ko.status.success() || !mo.status.success() {
            format!(
                "a command failed: kubectl ({}) stderr: {}; minik8s ({}) stderr: {}",
                ko.status,
                text(&ko.stderr),
                mo.status,
                text(&mo.stderr)
            )
        } else {
            match (
                tables_of(&kout).and_then(ages_blanked),
                tables_of(&mout).and_then(ages_blanked),
            ) {
                (Err(e), _) => format!("kubectl's output: {e}"),
                (_, Err(e)) => format!("minik8s' output: {e}"),
                (Ok(kt), Ok(mt)) if kt != mt => "the tables differ".to_string(),
                (Ok(_), Ok(_)) => {
                    let tables = parse_tables(&kout);
                    if accept(&tables) {
                        return (kout, tables);
                    }
                    format!("not yet {what}")
                }
            }
        };
        if Instant::now() > deadline {
            panic!(
                "`{}`: {problem} (after {WAIT:?})\n--- kubectl:\n{kout}--- minik8s:\n{mout}---",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Run `kubectl ARGS` and `minik8s ARGS`; both must succeed and print
/// exactly the same (describe, logs, exec). Returns the output.
pub fn same_text(k: &Kubectl, s: &Server, args: &[&str]) -> String {
    let ko = k.run(args);
    let mo = s.ctl(args);
    let (kout, mout) = (text(&ko.stdout), text(&mo.stdout));
    assert!(
        ko.status.success() && mo.status.success(),
        "`{}` failed: kubectl ({}) {kout}{}; minik8s ({}) {mout}{}",
        args.join(" "),
        ko.status,
        text(&ko.stderr),
        mo.status,
        text(&mo.stderr)
    );
    assert_eq!(
        kout,
        mout,
        "`{}`: kubectl (left) and minik8s (right) differ",
        args.join(" ")
    );
    kout
}

/// Run the same failing command with both; both must fail with exit code
/// 1, nothing on stdout and the same stderr. Returns the stderr.
pub fn same_error(k: &Kubectl, s: &Server, args: &[&str]) -> String {
    let ko = k.run(args);
    let mo = s.ctl(args);
    assert_eq!(
        (ko.status.code(), mo.status.code()),
        (Some(1), Some(1)),
        "`{}` should fail with 1: kubectl {}{}; minik8s {}{}",
        args.join(" "),
        text(&ko.stdout),
        text(&ko.stderr),
        text(&mo.stdout),
        text(&mo.stderr)
    );
    assert_eq!(
        (text(&ko.stdout), text(&mo.stdout)),
        (String::new(), String::new())
    );
    assert_eq!(
        text(&ko.stderr),
        text(&mo.stderr),
        "`{}`: kubectl's error (left) differs from minik8s' (right)",
        args.join(" ")
    );
    text(&ko.stderr)
}

/// kubectl 1.35 names the namespace when it deletes (`service "web"
/// deleted from default namespace`); minik8s prints the chapter's `service
/// "web" deleted`. Both forms of one deletion message.
pub fn deleted_line(kubectl_out: &str, minik8s_form: &str) {
    assert_eq!(
        kubectl_out,
        format!("{} from default namespace\n", minik8s_form.trim_end()),
        "kubectl's delete message"
    );
}
