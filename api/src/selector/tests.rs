use std::collections::BTreeMap;

use serde_json::json;

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parse_err(s: &str) -> String {
    let e = LabelSelector::parse(s).unwrap_err();
    assert_eq!(e.code, 400);
    e.message
}

#[test]
fn parses_every_operator() {
    let s = LabelSelector::parse("app=web, tier in (b,a), env!=prod, canary, !legacy, x notin (y)")
        .unwrap();
    assert_eq!(
        s.to_string(),
        "app=web,canary,env!=prod,!legacy,tier in (a,b),x notin (y)"
    );
    assert!(s.matches(&labels(&[("app", "web"), ("tier", "a"), ("canary", "")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c"), ("canary", "")])));
    assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a")])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "a"),
        ("canary", ""),
        ("legacy", "1")
    ])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "a"),
        ("canary", ""),
        ("env", "prod")
    ])));
    assert!(!s.matches(&labels(&[
        ("app", "web"),
        ("tier", "a"),
        ("canary", ""),
        ("x", "y")
    ])));
    let d = LabelSelector::parse("app==web").unwrap();
    assert!(d.matches(&labels(&[("app", "web")])));
    assert_eq!(d.requires_exact_match("app"), Some("web"));
}

#[test]
fn keywords_are_values_inside_sets_and_empty_values_count() {
    let s = LabelSelector::parse("x in (in,notin)").unwrap();
    assert!(s.matches(&labels(&[("x", "notin")])));
    let e = LabelSelector::parse("x in (,a)").unwrap();
    assert!(e.matches(&labels(&[("x", "")])));
    let empty = LabelSelector::parse("x=").unwrap();
    assert!(empty.matches(&labels(&[("x", "")])));
    assert!(!empty.matches(&labels(&[])));
    let set = LabelSelector::parse("x in ()").unwrap();
    assert!(set.matches(&labels(&[("x", "")])));
}

#[test]
fn greater_and_less_than() {
    let s = LabelSelector::parse("n>3,m<10").unwrap();
    assert!(s.matches(&labels(&[("n", "4"), ("m", "9")])));
    assert!(!s.matches(&labels(&[("n", "3"), ("m", "9")])));
    assert!(!s.matches(&labels(&[("n", "x"), ("m", "9")])));
}

#[test]
fn empty_selects_everything() {
    let s = LabelSelector::parse("").unwrap();
    assert!(s.is_everything());
    assert!(s.matches(&labels(&[])));
    assert!(LabelSelector::parse("   ").unwrap().is_everything());
}

#[test]
fn errors_match_kubernetes() {
    assert_eq!(
        parse_err("x in"),
        "unable to parse requirement: found '' expected: '('"
    );
    assert_eq!(
        parse_err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        parse_err("a=b c"),
        "found 'c', expected: ',' or 'end of string'"
    );
    assert_eq!(parse_err("a,"), "found '', expected: identifier after ','");
    assert_eq!(
        parse_err("=a"),
        "found '=', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        parse_err("!"),
        "unable to parse requirement: found '', expected: identifier"
    );
    assert_eq!(
        parse_err("x in (a b)"),
        "unable to parse requirement: found 'b', expected: ',' or ')'"
    );
    assert_eq!(
        parse_err("x>a"),
        "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert_eq!(
        parse_err("-a=b"),
        "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
    );
    assert_eq!(
        parse_err("a=-b"),
        "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn service_selectors_with_nothing_select_nothing() {
    let pod = json!({"metadata": {"labels": {"app": "web"}}});
    assert!(!LabelSelector::from_service_selector(None).matches_object(&pod));
    assert!(!LabelSelector::from_service_selector(Some(&BTreeMap::new())).matches_object(&pod));
    assert!(!LabelSelector::from_service_selector_json(Some(&json!({}))).matches_object(&pod));
    assert!(!LabelSelector::from_service_selector_json(None).matches_object(&pod));
    let sel = json!({"app": "web"});
    assert!(LabelSelector::from_service_selector_json(Some(&sel)).matches_object(&pod));
    let other = json!({"app": "web", "tier": "fe"});
    assert!(!LabelSelector::from_service_selector_json(Some(&other)).matches_object(&pod));
    // A plain label set, unlike a Service's selector, selects everything
    // when empty.
    assert!(LabelSelector::from_set(&BTreeMap::new()).matches_object(&pod));
}

#[test]
fn label_selector_objects() {
    let pod = json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}});
    let sel = json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "app", "operator": "Exists"}
        ]
    });
    let s = LabelSelector::from_label_selector_json(Some(&sel)).unwrap();
    assert!(s.matches_object(&pod));
    assert_eq!(s.to_string(), "app=web,app,!canary,tier in (be,fe)");
    let not_in =
        json!({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["fe"]}]});
    assert!(!LabelSelector::from_label_selector_json(Some(&not_in))
        .unwrap()
        .matches_object(&pod));
    assert!(LabelSelector::from_label_selector_json(Some(&json!({})))
        .unwrap()
        .matches_object(&pod));
    assert!(!LabelSelector::from_label_selector_json(None)
        .unwrap()
        .matches_object(&pod));
    assert!(!LabelSelector::from_label_selector_json(Some(&json!(null)))
        .unwrap()
        .matches_object(&pod));

    let bad = json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]});
    assert_eq!(
        LabelSelector::from_label_selector_json(Some(&bad))
            .unwrap_err()
            .message,
        "\"Foo\" is not a valid label selector operator"
    );
    let empty_in = json!({"matchExpressions": [{"key": "a", "operator": "In"}]});
    assert_eq!(
        LabelSelector::from_label_selector_json(Some(&empty_in))
            .unwrap_err()
            .message,
        "values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty"
    );

    let typed: k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector =
        serde_json::from_value(sel).unwrap();
    assert_eq!(LabelSelector::from_label_selector(Some(&typed)).unwrap(), s);
}

#[test]
fn field_selectors() {
    let pod = json!({
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": "minik8s-node"},
        "status": {"phase": "Running", "podIPs": [{"ip": "10.244.0.5"}]}
    });
    let s = FieldSelector::parse("Pod", "spec.nodeName=minik8s-node,status.phase!=Failed").unwrap();
    assert!(s.matches(&pod));
    assert!(FieldSelector::parse("Pod", "status.podIP=10.244.0.5")
        .unwrap()
        .matches(&pod));
    assert!(FieldSelector::parse("Pod", "spec.hostNetwork=false")
        .unwrap()
        .matches(&pod));
    assert!(FieldSelector::parse("Pod", "spec.host=minik8s-node")
        .unwrap()
        .matches(&pod));
    assert!(!FieldSelector::parse("Pod", "metadata.name==web-2")
        .unwrap()
        .matches(&pod));
    assert!(FieldSelector::parse("Pod", "").unwrap().matches(&pod));
    let by_name = FieldSelector::parse("Service", "metadata.name=web").unwrap();
    assert_eq!(by_name.requires_exact_match("metadata.name"), Some("web"));

    let ev = json!({
        "involvedObject": {"kind": "Service", "name": "web", "namespace": "default", "uid": "u1"},
        "type": "Normal",
        "source": {"component": "service-controller"}
    });
    let s = FieldSelector::parse(
        "Event",
        "involvedObject.name=web,involvedObject.namespace=default,involvedObject.kind=Service,involvedObject.uid=u1",
    )
    .unwrap();
    assert!(s.matches(&ev));
    assert!(
        FieldSelector::parse("Event", "type=Normal,source=service-controller")
            .unwrap()
            .matches(&ev)
    );
    assert!(!FieldSelector::parse("Event", "type=Warning")
        .unwrap()
        .matches(&ev));
}

#[test]
fn field_selector_errors() {
    let e = FieldSelector::parse("Pod", "foo=bar").unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "field label not supported: foo")
    );
    assert_eq!(
        FieldSelector::parse("Deployment", "spec.replicas=1").unwrap_err().message,
        "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert_eq!(
        FieldSelector::parse("Pod", "metadata.name")
            .unwrap_err()
            .message,
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
    assert_eq!(
        FieldSelector::parse("Pod", "metadata.name=a\\b")
            .unwrap_err()
            .message,
        "invalid field selector: invalid escape sequence: \\b"
    );
    let escaped = FieldSelector::parse("Pod", "metadata.name=a\\,b").unwrap();
    assert_eq!(escaped.terms()[0].value, "a,b");
}
