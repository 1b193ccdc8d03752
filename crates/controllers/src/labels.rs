//! Label selectors: the two shapes Kubernetes uses (a Service's plain map and
//! a workload's `LabelSelector` with expressions) evaluated against labels.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

/// A Service-style selector: every pair must be present. An empty map
/// selects nothing here, because an empty selector does not survive the
/// API's JSON round trip in Kubernetes either (it reads back as absent).
pub fn map_selects(selector: &Labels, labels: Option<&Labels>) -> bool {
    if selector.is_empty() {
        return false;
    }
    let Some(labels) = labels else { return false };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `metav1.LabelSelectorAsSelector(...).Matches`: all `matchLabels` and all
/// `matchExpressions` must hold. An empty selector selects everything.
pub fn selector_matches(selector: &LabelSelector, labels: Option<&Labels>) -> bool {
    let empty = Labels::new();
    let labels = labels.unwrap_or(&empty);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|req| {
        let values = req.values.as_deref().unwrap_or_default();
        let value = labels.get(&req.key);
        match req.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            // An operator the API should have rejected: select nothing.
            _ => false,
        }
    });
    labels_ok && exprs_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn map_selector_needs_every_pair() {
        let sel = labels(&[("app", "web")]);
        assert!(map_selects(
            &sel,
            Some(&labels(&[("app", "web"), ("x", "y")]))
        ));
        assert!(!map_selects(&sel, Some(&labels(&[("app", "webb")]))));
        assert!(!map_selects(&sel, None));
        assert!(!map_selects(&Labels::new(), Some(&labels(&[("a", "b")]))));
    }

    #[test]
    fn label_selector_expressions() {
        let req = |key: &str, op: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        };
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["front", "edge"]),
                req("canary", "DoesNotExist", &[]),
                req("env", "NotIn", &["prod"]),
            ]),
        };
        assert!(selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "edge")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "back")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[
                ("app", "web"),
                ("tier", "edge"),
                ("canary", "1")
            ]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[
                ("app", "web"),
                ("tier", "edge"),
                ("env", "prod")
            ]))
        ));
        assert!(selector_matches(&LabelSelector::default(), None));
    }
}
