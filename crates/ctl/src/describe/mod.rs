//! `describe` output as kubectl's describers write it (kubectl/pkg/describe):
//! pure functions from typed objects to text, laid out by the same tabwriter
//! settings (min width 0, padding 2) and the same prefix levels.

mod deployment;
mod endpoints;
mod generic;
mod namespace;
mod pod;
mod replicaset;
mod service;

pub use deployment::describe_deployment;
pub use endpoints::{describe_endpoint_slice, describe_endpoints};
pub use generic::describe_generic;
pub use namespace::describe_namespace;
pub use pod::describe_pod;
pub use replicaset::{describe_replica_set, PodCounts};
pub use service::describe_service;

use crate::tabwriter::TabWriter;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::collections::BTreeMap;

/// kubectl's `PrefixWriter` over a describe tabwriter: each level indents
/// two spaces.
pub(crate) struct DescribeWriter {
    tw: TabWriter,
}

impl DescribeWriter {
    pub(crate) fn new() -> DescribeWriter {
        DescribeWriter {
            tw: TabWriter::for_describe(),
        }
    }

    pub(crate) fn write(&mut self, level: usize, text: &str) {
        if level > 0 {
            self.tw.write(&"  ".repeat(level));
        }
        self.tw.write(text);
    }

    /// The `Name:` and `Namespace:` lines every namespaced describer
    /// starts with.
    pub(crate) fn name_and_namespace(&mut self, meta: &ObjectMeta) {
        let name = meta.name.as_deref().unwrap_or_default();
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        self.write(0, &format!("Name:\t{name}\n"));
        self.write(0, &format!("Namespace:\t{namespace}\n"));
    }

    pub(crate) fn finish(self) -> String {
        self.tw.finish()
    }
}

/// Annotations longer than this are shown folded and shortened.
const MAX_ANNOTATION_LEN: usize = 140;

/// kubectl shows every annotation but the last-applied record.
const SKIPPED_ANNOTATIONS: &[&str] = &[crate::client_side_apply::LAST_APPLIED];

/// The `Conditions:` table of a Deployment or ReplicaSet (type, status,
/// reason); nothing when there are none.
pub(crate) fn describe_conditions<'a>(
    w: &mut DescribeWriter,
    conditions: impl Iterator<Item = (&'a str, &'a str, Option<&'a str>)>,
) {
    let mut conditions = conditions.peekable();
    if conditions.peek().is_none() {
        return;
    }
    w.write(0, "Conditions:\n  Type\tStatus\tReason\n");
    w.write(1, "----\t------\t------\n");
    for (type_, status, reason) in conditions {
        w.write(
            1,
            &format!("{type_} \t{status}\t{}\n", reason.unwrap_or_default()),
        );
    }
}

pub(crate) fn print_labels(
    w: &mut DescribeWriter,
    title: &str,
    labels: Option<&BTreeMap<String, String>>,
) {
    w.write(0, &format!("{title}:\t"));
    let Some(labels) = labels.filter(|l| !l.is_empty()) else {
        w.write(0, "<none>\n");
        return;
    };
    for (i, (k, v)) in labels.iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        w.write(0, &format!("{k}={v}\n"));
    }
}

pub(crate) fn print_annotations(
    w: &mut DescribeWriter,
    title: &str,
    annotations: Option<&BTreeMap<String, String>>,
) {
    w.write(0, &format!("{title}:\t"));
    let keys: Vec<(&String, &String)> = annotations
        .into_iter()
        .flatten()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    if keys.is_empty() {
        w.write(0, "<none>\n");
        return;
    }
    for (i, (key, value)) in keys.into_iter().enumerate() {
        if i != 0 {
            w.write(0, "\t");
        }
        let value = value.strip_suffix('\n').unwrap_or(value);
        if value.len() + key.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.write(0, &format!("{key}:\n"));
            for line in value.split('\n') {
                w.write(
                    0,
                    &format!("\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            w.write(0, &format!("{key}: {value}\n"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s.to_string()
    }
}

/// `labels.FormatLabels`: sorted `k=v` joined by `,`, `<none>` if empty.
pub(crate) fn format_labels(labels: Option<&BTreeMap<String, String>>) -> String {
    match labels.filter(|l| !l.is_empty()) {
        None => "<none>".to_string(),
        Some(l) => l
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// apimachinery's `duration.HumanDuration` of a span in milliseconds (the
/// same printer the server's tables use).
pub fn human_duration(millis: i64) -> String {
    api::printers::human_duration(jiff::SignedDuration::from_millis(millis))
}

/// How long ago `t` was, `<unknown>` without a time.
pub(crate) fn since(t: Option<&jiff::Timestamp>, now: jiff::Timestamp) -> String {
    match t {
        None => "<unknown>".into(),
        Some(t) => {
            let ms = now.as_millisecond() - t.as_millisecond();
            human_duration(ms)
        }
    }
}

/// Go's `time.RFC1123Z` in the local time zone.
pub(crate) fn rfc1123z(t: &Time) -> String {
    t.0.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%a, %d %b %Y %H:%M:%S %z")
        .to_string()
}

/// The `Events:` section (`<none>` when the list is empty; absent when the
/// events could not be read).
pub(crate) fn describe_events(
    w: &mut DescribeWriter,
    events: Option<&[Event]>,
    now: jiff::Timestamp,
) {
    let Some(events) = events else { return };
    if events.is_empty() {
        w.write(0, "Events:\t<none>\n");
        return;
    }
    let mut events: Vec<&Event> = events.iter().collect();
    // Oldest first, as kubectl's SortableEvents orders by last timestamp.
    events.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
    });
    w.write(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.write(1, "----\t------\t----\t----\t-------\n");
    for e in events {
        let first = match &e.event_time {
            Some(t) => since(Some(&t.0), now),
            None => since(e.first_timestamp.as_ref().map(|t| &t.0), now),
        };
        let count = e.count.unwrap_or(0);
        let interval = if let Some(series) = &e.series {
            format!(
                "{} (x{} over {first})",
                since(series.last_observed_time.as_ref().map(|t| &t.0), now),
                series.count.unwrap_or(0)
            )
        } else if count > 1 {
            format!(
                "{} (x{count} over {first})",
                since(e.last_timestamp.as_ref().map(|t| &t.0), now)
            )
        } else {
            first
        };
        let source = e
            .source
            .as_ref()
            .and_then(|s| s.component.clone())
            .filter(|s| !s.is_empty())
            .or_else(|| e.reporting_component.clone())
            .unwrap_or_default();
        let mut message = e.message.as_deref().unwrap_or_default().trim().to_string();
        if let Some(fp) = e
            .involved_object
            .field_path
            .as_deref()
            .filter(|f| !f.is_empty())
        {
            message = format!("{fp}: {message}");
        }
        w.write(
            1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{message}\n",
                e.type_.as_deref().unwrap_or_default(),
                e.reason.as_deref().unwrap_or_default()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_apimachinery() {
        let s = 1000;
        assert_eq!(human_duration(-3 * s), "<invalid>");
        assert_eq!(human_duration(-500), "0s");
        assert_eq!(human_duration(10 * s), "10s");
        assert_eq!(human_duration(119 * s), "119s");
        assert_eq!(human_duration(125 * s), "2m5s");
        assert_eq!(human_duration(300 * s), "5m");
        assert_eq!(human_duration(3 * 3600 * s + 300 * s), "3h5m");
        assert_eq!(human_duration(47 * 3600 * s), "47h");
        assert_eq!(human_duration(2 * 86400 * s), "2d");
        assert_eq!(human_duration(3 * 86400 * s + 7200 * s), "3d2h");
        assert_eq!(human_duration(400 * 86400 * s), "400d");
    }

    #[test]
    fn labels_and_annotations_are_multiline() {
        let mut w = DescribeWriter::new();
        let labels: BTreeMap<String, String> =
            [("b".into(), "2".into()), ("a".into(), "1".into())].into();
        print_labels(&mut w, "Labels", Some(&labels));
        let ann: BTreeMap<String, String> = [(
            crate::client_side_apply::LAST_APPLIED.to_string(),
            "{}".to_string(),
        )]
        .into();
        print_annotations(&mut w, "Annotations", Some(&ann));
        assert_eq!(
            w.finish(),
            "Labels:       a=1\n              b=2\nAnnotations:  <none>\n"
        );
    }
}
