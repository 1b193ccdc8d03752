//! Printing the server's `Table` answers the way kubectl's
//! `HumanReadablePrinter` does: header upper-cased, wide (priority 1)
//! columns only with `-o wide`, NAMESPACE first with `-A`, LABELS last
//! with `--show-labels`, `kind/name` when several kinds are printed, a blank
//! line between kinds. The CLI never computes columns itself.

use crate::tabwriter::TabWriter;
use serde_json::Value;

/// How tables are decorated and which columns show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    pub wide: bool,
    pub no_headers: bool,
    pub show_labels: bool,
    pub with_namespace: bool,
    /// `service`, `deployment.apps`: prefixes the name column.
    pub kind_prefix: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Column {
    name: String,
    priority: i64,
    /// `format: name` + `type: string`: where the kind prefix goes.
    is_name: bool,
}

/// Prints successive tables of one kind (a list, then watch events),
/// printing the header once, as kubectl's printer remembers it did.
pub struct TablePrinter {
    options: TableOptions,
    printed_headers: bool,
    last_columns: Vec<Value>,
}

impl TablePrinter {
    pub fn new(options: TableOptions) -> TablePrinter {
        TablePrinter {
            options,
            printed_headers: false,
            last_columns: Vec::new(),
        }
    }

    /// Write one table's rows (and the header when due) into `w`.
    pub fn print(&mut self, table: &Value, w: &mut TabWriter) {
        let mut no_headers = self.options.no_headers;
        let defs: Vec<Value> = table["columnDefinitions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if self.printed_headers && (defs.is_empty() || defs == self.last_columns) {
            no_headers = true;
        }
        let defs = if defs.is_empty() {
            self.last_columns.clone()
        } else {
            if defs != self.last_columns {
                self.last_columns = defs.clone();
                self.printed_headers = false;
            }
            defs
        };
        let rows: Vec<&Value> = table["rows"]
            .as_array()
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        if !rows.is_empty() {
            self.printed_headers = true;
        }

        let (columns, cells) = self.decorate(&defs, &rows);
        let visible: Vec<usize> = (0..columns.len())
            .filter(|&i| self.options.wide || columns[i].priority == 0)
            .collect();

        if !no_headers {
            if rows.is_empty() {
                return;
            }
            let header: Vec<String> = visible
                .iter()
                .map(|&i| columns[i].name.to_uppercase())
                .collect();
            w.write(&header.join("\t"));
            w.write("\n");
        }
        for row in cells {
            let line: Vec<&str> = visible
                .iter()
                .map(|&i| row.get(i).map(String::as_str).unwrap_or(""))
                .collect();
            w.write(&line.join("\t"));
            w.write("\n");
        }
    }

    /// kubectl's `decorateTable`: the namespace and labels columns and the
    /// kind prefix, read from each row's object metadata.
    fn decorate(&self, defs: &[Value], rows: &[&Value]) -> (Vec<Column>, Vec<Vec<String>>) {
        let mut columns = Vec::new();
        if self.options.with_namespace {
            columns.push(Column {
                name: "Namespace".into(),
                priority: 0,
                is_name: false,
            });
        }
        let first_def = columns.len();
        for d in defs {
            columns.push(Column {
                name: d["name"].as_str().unwrap_or_default().to_string(),
                priority: d["priority"].as_i64().unwrap_or(0),
                is_name: d["format"] == "name" && d["type"] == "string",
            });
        }
        if self.options.show_labels {
            columns.push(Column {
                name: "Labels".into(),
                priority: 0,
                is_name: false,
            });
        }
        let name_column = self.options.kind_prefix.as_ref().and_then(|_| {
            columns[first_def..first_def + defs.len()]
                .iter()
                .position(|c| c.is_name)
        });

        let cells = rows
            .iter()
            .map(|row| {
                let meta = &row["object"]["metadata"];
                let mut out = Vec::with_capacity(columns.len());
                if self.options.with_namespace {
                    out.push(meta["namespace"].as_str().unwrap_or_default().to_string());
                }
                let row_cells = row["cells"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                for (i, c) in row_cells.iter().take(defs.len()).enumerate() {
                    let mut text = cell_text(c);
                    if Some(i) == name_column {
                        let prefix = self.options.kind_prefix.as_deref().unwrap_or_default();
                        text = format!("{prefix}/{text}");
                    }
                    out.push(text);
                }
                while out.len() < first_def + defs.len() {
                    out.push(String::new());
                }
                if self.options.show_labels {
                    out.push(if meta.is_object() {
                        format_labels(&meta["labels"])
                    } else {
                        String::new()
                    });
                }
                out
            })
            .collect();
        (columns, cells)
    }
}

/// A cell as Go's `fmt.Sprint` prints the decoded JSON value; text from a
/// line break on is cut off with `...` (it would break the layout).
fn cell_text(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            (_, _, Some(f)) => f.to_string(),
            _ => n.to_string(),
        },
        other => other.to_string(),
    };
    match s.find(['\n', '\r', '\x0c']) {
        Some(i) => format!("{}...", &s[..i]),
        None => s,
    }
}

/// `k=v,k2=v2` sorted by key, `<none>` when empty (labels.FormatLabels).
pub fn format_labels(labels: &Value) -> String {
    let Some(map) = labels.as_object().filter(|m| !m.is_empty()) else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// One answer of `get`: the table of one kind.
pub struct KindTable<'a> {
    /// Identity of the kind (`deployment.apps`); also the name prefix.
    pub kind: String,
    /// Cluster-scoped kinds never get the NAMESPACE column.
    pub namespaced: bool,
    pub table: &'a Value,
}

/// What `get` prints for its tables, in order, and whether it printed
/// anything (else kubectl says "No resources found").
pub fn render_get(
    tables: &[KindTable],
    base: &TableOptions,
    all_namespaces: bool,
) -> (String, bool) {
    // Kind prefixes only when the answers are of more than one kind.
    let with_kind = tables.len() >= 2 && tables.iter().any(|t| t.kind != tables[0].kind);
    let mut w = TabWriter::for_tables();
    let mut out = String::new();
    let mut written = false;
    let mut separator_due = false;
    let emit = |text: String, out: &mut String, separator_due: &mut bool, written: &mut bool| {
        if text.is_empty() {
            return;
        }
        if *separator_due {
            out.push('\n');
            *separator_due = false;
        }
        out.push_str(&text);
        *written = true;
    };
    let mut last_kind: Option<&str> = None;
    let mut printer: Option<TablePrinter> = None;
    for t in tables {
        if last_kind != Some(t.kind.as_str()) {
            w.flush();
            emit(w.take_output(), &mut out, &mut separator_due, &mut written);
            w.forget_widths();
            if last_kind.is_some() && !base.no_headers && written {
                separator_due = true;
            }
            let mut opts = base.clone();
            opts.with_namespace = all_namespaces && t.namespaced;
            opts.kind_prefix = with_kind.then(|| t.kind.clone());
            printer = Some(TablePrinter::new(opts));
            last_kind = Some(t.kind.as_str());
        }
        if let Some(p) = printer.as_mut() {
            p.print(t.table, &mut w);
        }
    }
    w.flush();
    emit(w.take_output(), &mut out, &mut separator_due, &mut written);
    (out, written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn col(name: &str, priority: i64) -> Value {
        let format = if name == "Name" { "name" } else { "" };
        json!({"name": name, "type": "string", "format": format, "priority": priority})
    }

    fn svc_table(rows: &[(&str, &str, &str, &str, &str, &str, &str)]) -> Value {
        json!({
            "kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": "101"},
            "columnDefinitions": [col("Name",0), col("Type",0), col("Cluster-IP",0), col("External-IP",0),
                                  col("Port(s)",0), col("Age",0), col("Selector",1)],
            "rows": rows.iter().map(|(n, t, ip, ext, ports, age, sel)| json!({
                "cells": [n, t, ip, ext, ports, age, sel],
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                           "metadata": {"name": n, "namespace": "default",
                                        "labels": if *n == "web" { json!({"tier": "front", "app": "web"}) } else { json!({"component": "apiserver", "provider": "kubernetes"}) }}}
            })).collect::<Vec<_>>()
        })
    }

    fn chapter_services() -> Value {
        svc_table(&[
            (
                "kubernetes",
                "ClusterIP",
                "10.96.0.1",
                "<none>",
                "443/TCP",
                "2d",
                "<none>",
            ),
            (
                "web",
                "ClusterIP",
                "10.96.142.31",
                "<none>",
                "80/TCP",
                "10s",
                "app=web",
            ),
        ])
    }

    fn render(table: &Value, opts: TableOptions, all_ns: bool) -> String {
        let t = [KindTable {
            kind: "service".into(),
            namespaced: true,
            table,
        }];
        render_get(&t, &opts, all_ns).0
    }

    #[test]
    fn renders_the_chapters_service_table() {
        assert_eq!(
            render(&chapter_services(), TableOptions::default(), false),
            "NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE\n\
             kubernetes   ClusterIP   10.96.0.1      <none>        443/TCP   2d\n\
             web          ClusterIP   10.96.142.31   <none>        80/TCP    10s\n"
        );
    }

    #[test]
    fn renders_nodeport_row_of_the_chapter() {
        let t = svc_table(&[(
            "web",
            "NodePort",
            "10.96.142.31",
            "<none>",
            "80:30080/TCP",
            "5m",
            "app=web",
        )]);
        assert_eq!(
            render(&t, TableOptions::default(), false),
            "NAME   TYPE       CLUSTER-IP     EXTERNAL-IP   PORT(S)        AGE\n\
             web    NodePort   10.96.142.31   <none>        80:30080/TCP   5m\n"
        );
    }

    #[test]
    fn renders_endpoints_and_slices_of_the_chapter() {
        let ep = json!({"columnDefinitions": [col("Name",0), col("Endpoints",0), col("Age",0)],
                        "rows": [{"cells": ["web", "10.244.0.5:80,10.244.0.6:80,10.244.0.7:80", "30s"]}]});
        assert_eq!(
            render(&ep, TableOptions::default(), false),
            "NAME   ENDPOINTS                                   AGE\n\
             web    10.244.0.5:80,10.244.0.6:80,10.244.0.7:80   30s\n"
        );
        let slices = json!({"columnDefinitions": [col("Name",0), col("AddressType",0), col("Ports",0), col("Endpoints",0), col("Age",0)],
                        "rows": [{"cells": ["web-abc12", "IPv4", "80", "10.244.0.5,10.244.0.6,10.244.0.7", "30s"]}]});
        assert_eq!(
            render(&slices, TableOptions::default(), false),
            "NAME        ADDRESSTYPE   PORTS   ENDPOINTS                          AGE\n\
             web-abc12   IPv4          80      10.244.0.5,10.244.0.6,10.244.0.7   30s\n"
        );
    }

    #[test]
    fn wide_shows_priority_columns() {
        let out = render(
            &chapter_services(),
            TableOptions {
                wide: true,
                ..Default::default()
            },
            false,
        );
        assert!(out.starts_with(
            "NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE   SELECTOR\n"
        ));
        assert!(out.ends_with("80/TCP    10s   app=web\n"));
    }

    #[test]
    fn show_labels_adds_sorted_labels() {
        let out = render(
            &chapter_services(),
            TableOptions {
                show_labels: true,
                ..Default::default()
            },
            false,
        );
        assert_eq!(
            out,
            "NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE   LABELS\n\
             kubernetes   ClusterIP   10.96.0.1      <none>        443/TCP   2d    component=apiserver,provider=kubernetes\n\
             web          ClusterIP   10.96.142.31   <none>        80/TCP    10s   app=web,tier=front\n"
        );
        assert_eq!(format_labels(&json!({})), "<none>");
    }

    #[test]
    fn all_namespaces_puts_namespace_first() {
        let out = render(&chapter_services(), TableOptions::default(), true);
        assert_eq!(
            out.lines().next().unwrap(),
            "NAMESPACE   NAME         TYPE        CLUSTER-IP     EXTERNAL-IP   PORT(S)   AGE"
        );
        assert!(out.contains("\ndefault     web          ClusterIP"));
    }

    #[test]
    fn several_kinds_are_prefixed_and_separated() {
        let svcs = svc_table(&[(
            "kubernetes",
            "ClusterIP",
            "10.96.0.1",
            "<none>",
            "443/TCP",
            "2d",
            "<none>",
        )]);
        let deploys = json!({"columnDefinitions": [col("Name",0), col("Ready",0), col("Up-to-date",0), col("Available",0), col("Age",0)],
                             "rows": [{"cells": ["web", "3/3", 3, 3, "1m"]}]});
        let empty_pods = json!({"columnDefinitions": [col("Name",0), col("Ready",0)], "rows": []});
        let tables = [
            KindTable {
                kind: "service".into(),
                namespaced: true,
                table: &svcs,
            },
            KindTable {
                kind: "deployment.apps".into(),
                namespaced: true,
                table: &deploys,
            },
            KindTable {
                kind: "pod".into(),
                namespaced: true,
                table: &empty_pods,
            },
        ];
        let (out, written) = render_get(&tables, &TableOptions::default(), false);
        assert!(written);
        assert_eq!(
            out,
            "NAME                 TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE\n\
             service/kubernetes   ClusterIP   10.96.0.1    <none>        443/TCP   2d\n\
             \n\
             NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\n\
             deployment.apps/web   3/3     3            3           1m\n"
        );
    }

    #[test]
    fn one_kind_by_several_names_is_one_table() {
        let a = svc_table(&[(
            "kubernetes",
            "ClusterIP",
            "10.96.0.1",
            "<none>",
            "443/TCP",
            "2d",
            "<none>",
        )]);
        let b = svc_table(&[(
            "web",
            "ClusterIP",
            "10.96.142.31",
            "<none>",
            "80/TCP",
            "10s",
            "app=web",
        )]);
        let tables = [
            KindTable {
                kind: "service".into(),
                namespaced: true,
                table: &a,
            },
            KindTable {
                kind: "service".into(),
                namespaced: true,
                table: &b,
            },
        ];
        let (out, _) = render_get(&tables, &TableOptions::default(), false);
        assert_eq!(
            out,
            render(&chapter_services(), TableOptions::default(), false)
        );
    }

    #[test]
    fn empty_answers_print_nothing() {
        let empty = json!({"columnDefinitions": [col("Name",0)], "rows": []});
        let (out, written) = render_get(
            &[KindTable {
                kind: "pod".into(),
                namespaced: true,
                table: &empty,
            }],
            &TableOptions::default(),
            false,
        );
        assert_eq!(out, "");
        assert!(!written);
    }

    #[test]
    fn watch_rows_follow_without_header() {
        let mut p = TablePrinter::new(TableOptions::default());
        let mut w = TabWriter::for_tables();
        p.print(&chapter_services(), &mut w);
        w.flush();
        let first = w.take_output();
        let event = json!({"rows": [{"cells": ["web", "NodePort", "10.96.142.31", "<none>", "80:30080/TCP", "5m", "app=web"]}]});
        p.print(&event, &mut w);
        w.flush();
        assert!(first.starts_with("NAME"));
        assert_eq!(
            w.take_output(),
            "web          NodePort    10.96.142.31   <none>        80:30080/TCP   5m\n"
        );
    }

    #[test]
    fn cells_print_like_go() {
        assert_eq!(cell_text(&json!(3)), "3");
        assert_eq!(cell_text(&json!(null)), "");
        assert_eq!(cell_text(&json!("a\nb")), "a...");
    }
}
