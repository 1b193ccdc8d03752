//! `minik8s get`: server-printed tables (or objects with `-o yaml|json|name`),
//! with kubectl's decorations, and `-w` to keep printing changes.

use crate::encoding::{to_json_output, to_yaml_output};
use crate::error::CtlError;
use crate::resource_args::{self, kind_name, Target};
use crate::table::{render_get, KindTable, TableOptions, TablePrinter};
use crate::tabwriter::TabWriter;
use crate::{manifest, Context};
use client::{ListParams, TABLE_ACCEPT};
use futures::StreamExt;
use serde_json::{json, Value};
use std::io::Write;

/// Display one or many resources.
#[derive(clap::Args, Debug, Clone)]
pub struct GetArgs {
    /// TYPE[,TYPE...] [NAME...] or TYPE/NAME... (e.g. `svc`, `svc,deploy`, `pods web-1`, `all`).
    pub resources: Vec<String>,
    /// Output format: wide, yaml, json or name.
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Label selector, e.g. `app=web` or `kubernetes.io/service-name=web`.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Field selector, e.g. `metadata.name=web`.
    #[arg(long)]
    pub field_selector: Option<String>,
    /// Show all labels as the last column.
    #[arg(long)]
    pub show_labels: bool,
    /// List across all namespaces.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
    /// After listing, watch for changes.
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Don't print headers.
    #[arg(long)]
    pub no_headers: bool,
    /// Don't report objects that do not exist.
    #[arg(long)]
    pub ignore_not_found: bool,
    /// Get the objects named in these manifests.
    #[arg(short = 'f', long = "filename")]
    pub filenames: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Table { wide: bool },
    Yaml,
    Json,
    Name,
}

/// A target plus the namespace it is read from (`None`: all namespaces).
struct Request {
    target: Target,
    namespace: Option<String>,
}

pub async fn run(ctx: &Context, args: GetArgs) -> Vec<CtlError> {
    let format = match args.output.as_deref() {
        None | Some("") => Format::Table { wide: false },
        Some("wide") => Format::Table { wide: true },
        Some("yaml") => Format::Yaml,
        Some("json") => Format::Json,
        Some("name") => Format::Name,
        Some(other) => {
            return vec![CtlError::msg(format!(
                "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json,name,wide,yaml"
            ))]
        }
    };
    let (requests, mut errors) = match requests(ctx, &args) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    let params = ListParams {
        label_selector: args.selector.clone(),
        field_selector: args.field_selector.clone(),
    };
    if args.watch {
        if let Some(e) = errors.pop() {
            return vec![e];
        }
        return watch(ctx, &args, format, requests, params).await;
    }
    match format {
        Format::Table { wide } => {
            errors.extend(print_tables(ctx, &args, wide, &requests, &params).await);
        }
        _ => errors.extend(print_objects(ctx, &args, format, &requests, &params).await),
    }
    errors
}

fn requests(ctx: &Context, args: &GetArgs) -> Result<(Vec<Request>, Vec<CtlError>), CtlError> {
    let default_ns = |res: &api::registry::ResourceInfo| {
        (!args.all_namespaces && res.namespaced).then(|| ctx.namespace.clone())
    };
    if !args.filenames.is_empty() {
        let (objects, errors) = manifest::read_all(&args.filenames, false);
        let mut out = Vec::new();
        for m in objects {
            let api_version = m.object["apiVersion"].as_str().unwrap_or_default();
            let kind = m.object["kind"].as_str().unwrap_or_default();
            let Some(res) = api::registry::by_kind(api_version, kind) else {
                return Err(CtlError::msg(format!(
                    "resource mapping not found for name: {:?} namespace: {:?} from {:?}: no matches for kind {kind:?} in version {api_version:?}\nensure CRDs are installed first",
                    m.object["metadata"]["name"].as_str().unwrap_or_default(),
                    m.object["metadata"]["namespace"].as_str().unwrap_or_default(),
                    m.source
                )));
            };
            let namespace = res.namespaced.then(|| {
                m.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(&ctx.namespace)
                    .to_string()
            });
            out.push(Request {
                target: Target {
                    res,
                    name: m.object["metadata"]["name"].as_str().map(str::to_string),
                },
                namespace,
            });
        }
        return Ok((out, errors));
    }
    let targets = resource_args::parse(&args.resources)?;
    if args.all_namespaces && targets.iter().any(|t| t.name.is_some()) {
        return Err(CtlError::msg(
            "a resource cannot be retrieved by name across all namespaces",
        ));
    }
    Ok((
        targets
            .into_iter()
            .map(|target| Request {
                namespace: default_ns(target.res),
                target,
            })
            .collect(),
        Vec::new(),
    ))
}

async fn print_tables(
    ctx: &Context,
    args: &GetArgs,
    wide: bool,
    requests: &[Request],
    params: &ListParams,
) -> Vec<CtlError> {
    let mut errors = Vec::new();
    let mut answers = Vec::new();
    for r in requests {
        let name = r.target.name.as_deref();
        match ctx
            .client
            .get_table(r.target.res, r.namespace.as_deref(), name, params)
            .await
        {
            Ok(answer) => answers.push((r.target.res, as_table(answer))),
            Err(e) => {
                let e = CtlError::from(e);
                if matches!(e, CtlError::Unreachable { .. }) {
                    return vec![e];
                }
                if !(args.ignore_not_found && e.is_not_found()) {
                    errors.push(e);
                }
            }
        }
    }
    let tables: Vec<KindTable> = answers
        .iter()
        .map(|(res, table)| KindTable {
            kind: kind_name(res),
            namespaced: res.namespaced,
            table,
        })
        .collect();
    let opts = TableOptions {
        wide,
        no_headers: args.no_headers,
        show_labels: args.show_labels,
        ..TableOptions::default()
    };
    let (text, written) = render_get(&tables, &opts, args.all_namespaces);
    print!("{text}");
    if !written && errors.is_empty() && !args.ignore_not_found {
        let all_namespaced =
            !args.all_namespaces && requests.iter().all(|r| r.target.res.namespaced);
        if all_namespaced {
            eprintln!("No resources found in {} namespace.", ctx.namespace);
        } else {
            eprintln!("No resources found");
        }
    }
    errors
}

async fn print_objects(
    ctx: &Context,
    args: &GetArgs,
    format: Format,
    requests: &[Request],
    params: &ListParams,
) -> Vec<CtlError> {
    let mut errors = Vec::new();
    let mut items: Vec<Value> = Vec::new();
    // `get svc web -o yaml` prints the object itself, anything else a List.
    let single_item = requests.len() == 1 && requests[0].target.name.is_some();
    for r in requests {
        let res = r.target.res;
        let ns = r.namespace.as_deref();
        let answer = match &r.target.name {
            Some(name) => ctx.client.get(res, ns, name).await.map(|o| vec![o]),
            None => ctx.client.list(res, ns, params).await.map(|list| {
                list["items"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|mut item| {
                        // List items may omit their type; output shows it.
                        if item.get("kind").is_none() {
                            item["kind"] = json!(res.kind);
                            item["apiVersion"] = json!(res.api_version());
                        }
                        item
                    })
                    .collect()
            }),
        };
        match answer {
            Ok(mut objs) => items.append(&mut objs),
            Err(e) => {
                let e = CtlError::from(e);
                if matches!(e, CtlError::Unreachable { .. }) || single_item {
                    return vec![e];
                }
                if !(args.ignore_not_found && e.is_not_found()) {
                    errors.push(e);
                }
            }
        }
    }
    let out = match format {
        Format::Name => items
            .iter()
            .map(|o| format!("{}\n", object_name(o)))
            .collect::<String>(),
        _ => {
            let doc = if single_item && items.len() == 1 {
                items.remove(0)
            } else {
                json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}})
            };
            if format == Format::Json {
                to_json_output(&doc)
            } else {
                to_yaml_output(&doc)
            }
        }
    };
    print!("{out}");
    errors
}

/// The answer as a Table: a server that answers with plain objects gets
/// kubectl's fallback columns, NAME and AGE.
fn as_table(answer: Value) -> Value {
    if answer["kind"] == "Table" {
        return answer;
    }
    let objects = match answer["items"].as_array() {
        Some(items) => items.clone(),
        None => vec![answer.clone()],
    };
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let age = o["metadata"]["creationTimestamp"]
                .as_str()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| crate::describe::human_duration(now.as_millisecond() - t.as_millisecond()))
                .unwrap_or_else(|| "<unknown>".into());
            json!({"cells": [o["metadata"]["name"], age], "object": {"metadata": o["metadata"]}})
        })
        .collect();
    json!({
        "kind": "Table",
        "metadata": {"resourceVersion": answer["metadata"]["resourceVersion"]},
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Age", "type": "string", "format": "", "priority": 0}
        ],
        "rows": rows
    })
}

/// `service/web`, `deployment.apps/web` (kubectl's name printer).
fn object_name(obj: &Value) -> String {
    let kind = obj["kind"].as_str().unwrap_or_default().to_lowercase();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or("");
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if group.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}.{group}/{name}")
    }
}

/// List, then print every change: tables get their rows appended under the
/// same header, other formats one object per event.
async fn watch(
    ctx: &Context,
    args: &GetArgs,
    format: Format,
    requests: Vec<Request>,
    mut params: ListParams,
) -> Vec<CtlError> {
    let Some(first) = requests.first() else {
        return vec![CtlError::msg("no resources to watch")];
    };
    if requests.iter().any(|r| r.target.res != first.target.res) {
        return vec![CtlError::msg("you may only specify a single resource type")];
    }
    if requests.len() > 1 {
        return vec![CtlError::msg("watch is only supported on individual resources and resource collections, but 2 resources were found")];
    }
    let res = first.target.res;
    let ns = first.namespace.clone();
    if let Some(name) = &first.target.name {
        params.field_selector = Some(format!("metadata.name={name}"));
    }
    let Format::Table { wide } = format else {
        return watch_objects(ctx, format, res, ns, params).await;
    };

    let mut printer = TablePrinter::new(TableOptions {
        wide,
        no_headers: args.no_headers,
        show_labels: args.show_labels,
        with_namespace: args.all_namespaces && res.namespaced,
        kind_prefix: None,
    });
    let mut w = TabWriter::for_tables();
    let table = match ctx
        .client
        .get_table(
            res,
            ns.as_deref(),
            first.target.name.as_deref(),
            &ListParams::default(),
        )
        .await
    {
        Ok(t) => t,
        Err(e) => return vec![e.into()],
    };
    let table = as_table(table);
    printer.print(&table, &mut w);
    w.flush();
    print!("{}", w.take_output());
    let _ = std::io::stdout().flush();
    let mut rv = table["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    if first.target.name.is_some() {
        // A table of one object carries no list revision: watch from the
        // object's own.
        if let Some(v) = table["rows"][0]["object"]["metadata"]["resourceVersion"].as_str() {
            rv = v.to_string();
        }
    }
    loop {
        let events = match watch_tables(ctx, res, ns.as_deref(), &params, &rv).await {
            Ok(s) => s,
            Err(e) => return vec![e],
        };
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let (kind, object) = match event {
                Ok(ev) => ev,
                Err(e) => return vec![e],
            };
            if kind == "ERROR" {
                return vec![status_error(&object)];
            }
            if kind == "BOOKMARK" {
                continue;
            }
            for row in object["rows"].as_array().into_iter().flatten() {
                if let Some(v) = row["object"]["metadata"]["resourceVersion"].as_str() {
                    rv = v.to_string();
                }
            }
            printer.print(&object, &mut w);
            w.flush();
            print!("{}", w.take_output());
            let _ = std::io::stdout().flush();
        }
        // The server ended the watch (timeout): continue where it stopped.
    }
}

/// `-w -o yaml|json|name`: each changed object as it arrives.
async fn watch_objects(
    ctx: &Context,
    format: Format,
    res: &'static api::registry::ResourceInfo,
    ns: Option<String>,
    params: ListParams,
) -> Vec<CtlError> {
    let mut rv = "0".to_string();
    let mut first = true;
    loop {
        let events = match ctx.client.watch(res, ns.as_deref(), &params, &rv).await {
            Ok(s) => s,
            Err(e) => return vec![e.into()],
        };
        futures::pin_mut!(events);
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(ev) => ev,
                Err(e) => return vec![e.into()],
            };
            match event.kind.as_str() {
                "ERROR" => return vec![status_error(&event.object)],
                "BOOKMARK" => continue,
                _ => {}
            }
            if let Some(v) = event.object["metadata"]["resourceVersion"].as_str() {
                rv = v.to_string();
            }
            let text = match format {
                Format::Json => to_json_output(&event.object),
                Format::Name => format!("{}\n", object_name(&event.object)),
                _ => {
                    let sep = if first { "" } else { "---\n" };
                    format!("{sep}{}", to_yaml_output(&event.object))
                }
            };
            first = false;
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    }
}

/// An ERROR watch event's Status as an error.
fn status_error(status: &Value) -> CtlError {
    CtlError::from(client::ClientError::Status {
        code: status["code"].as_u64().unwrap_or(500) as u16,
        reason: status["reason"].as_str().unwrap_or_default().to_string(),
        message: status["message"]
            .as_str()
            .unwrap_or("watch error")
            .to_string(),
        body: status.clone(),
    })
}

/// A watch whose events carry one-row Tables (kubectl's `get -w` request).
async fn watch_tables(
    ctx: &Context,
    res: &'static api::registry::ResourceInfo,
    ns: Option<&str>,
    params: &ListParams,
    rv: &str,
) -> Result<impl futures::Stream<Item = Result<(String, Value), CtlError>>, CtlError> {
    let mut query: Vec<(&str, String)> = vec![
        ("watch", "true".into()),
        ("resourceVersion", rv.to_string()),
    ];
    if let Some(l) = &params.label_selector {
        query.push(("labelSelector", l.clone()));
    }
    if let Some(f) = &params.field_selector {
        query.push(("fieldSelector", f.clone()));
    }
    let resp = ctx
        .client
        .http()
        .get(ctx.client.url(&res.path(ns, None)))
        .header(reqwest::header::ACCEPT, TABLE_ACCEPT)
        .query(&query)
        .send()
        .await
        .map_err(|e| super::transport_error(ctx, e))?;
    let resp = super::check_status(resp).await?;
    Ok(super::json_lines(resp.bytes_stream()).map(|line| {
        let v = line?;
        let kind = v["type"].as_str().unwrap_or_default().to_string();
        Ok((kind, v["object"].clone()))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_print_kind_and_group() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        assert_eq!(object_name(&d), "deployment.apps/web");
        let s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}});
        assert_eq!(object_name(&s), "service/web");
    }

    #[test]
    fn plain_lists_fall_back_to_name_and_age() {
        let list = json!({"kind": "ServiceList", "metadata": {"resourceVersion": "5"},
                          "items": [{"metadata": {"name": "web", "creationTimestamp": "2020-01-01T00:00:00Z"}}]});
        let t = as_table(list);
        assert_eq!(t["columnDefinitions"][1]["name"], "Age");
        assert_eq!(t["rows"][0]["cells"][0], "web");
        // Years old: printed in years.
        assert!(t["rows"][0]["cells"][1].as_str().unwrap().contains('y'));
        assert_eq!(t["metadata"]["resourceVersion"], "5");
    }
}
