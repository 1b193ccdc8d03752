//! Label selectors: which objects a Service, Deployment, ReplicaSet or
//! `-l` flag selects, with Kubernetes' matching rules.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector as TypedLabelSelector;
use serde_json::Value;

use crate::status::{aggregate_messages, quote, StatusError};
use crate::validation::names::{
    label_value as label_value_errors, qualified_name as label_key_errors,
};

/// How a requirement relates a label to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One condition on one label key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

/// All requirements must hold (AND). `nothing` selects no object at all,
/// which differs from no requirements (every object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Requirement {
    fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        let has_value = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                lookup(&self.key).is_some_and(|v| has_value(&v))
            }
            Operator::NotIn | Operator::NotEquals => {
                lookup(&self.key).is_none_or(|v| !has_value(&v))
            }
            Operator::Exists => lookup(&self.key).is_some(),
            Operator::DoesNotExist => lookup(&self.key).is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = lookup(&self.key).map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    /// `!key`, `key`, `key=v`, `key in (a,b)` — the canonical string form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return write!(f, "{}", self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        let mut values = self.values.clone();
        values.sort();
        let values = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({values})", self.key),
            _ => write!(f, "{}{op}{values}", self.key),
        }
    }
}

/// Kubernetes' NewRequirement: checks the key, the values and how many
/// values the operator takes; every problem is reported, aggregated.
pub(super) fn new_requirement(
    key: &str,
    operator: Operator,
    values: Vec<String>,
) -> Result<Requirement, String> {
    let mut errs = Vec::new();
    let key_errs = label_key_errors(key);
    if !key_errs.is_empty() {
        errs.push(format!(
            "key: Invalid value: {}: {}",
            quote(key),
            key_errs.join("; ")
        ));
    }
    let shown = || values_json(&values);
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
            shown()
        )),
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            errs.push(format!(
                "values: Invalid value: {}: exact-match compatibility requires one single value",
                shown()
            ))
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(format!(
            "values: Invalid value: {}: values set must be empty for exists and does not exist",
            shown()
        )),
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(format!(
                    "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                    shown()
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(format!(
                        "values[{i}]: Invalid value: {}: for 'Gt', 'Lt' operators, the value must be an integer",
                        quote(v)
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let v_errs = label_value_errors(v);
        if !v_errs.is_empty() {
            errs.push(format!(
                "values[{i}][{key}]: Invalid value: {}: {}",
                quote(v),
                v_errs.join("; ")
            ));
        }
    }
    if errs.is_empty() {
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    } else {
        Err(aggregate_messages(&errs))
    }
}

/// A value list as Kubernetes prints it in a field error (JSON; `null`
/// when empty, as a nil Go slice).
fn values_json(values: &[String]) -> String {
    if values.is_empty() {
        "null".to_string()
    } else {
        Value::from(values.to_vec()).to_string()
    }
}

impl LabelSelector {
    /// Selects every object.
    pub fn everything() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: false,
        }
    }

    /// Selects no object.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parse the string form (`?labelSelector=`, `-l`). An empty string
    /// selects everything. Errors are 400 BadRequest with Kubernetes'
    /// parser messages.
    pub fn parse(selector: &str) -> Result<Self, StatusError> {
        let requirements =
            super::label_parser::parse_requirements(selector).map_err(StatusError::bad_request)?;
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Exactly these labels (an empty set selects everything).
    pub fn from_set(labels: &BTreeMap<String, String>) -> Self {
        let mut requirements: Vec<Requirement> = labels
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// A Service's `spec.selector`: a Service without a selector, or with
    /// an empty one, selects no Pods (its endpoints are managed by hand).
    pub fn from_service_selector(selector: Option<&BTreeMap<String, String>>) -> Self {
        match selector {
            Some(s) if !s.is_empty() => Self::from_set(s),
            _ => Self::nothing(),
        }
    }

    /// [`from_service_selector`](Self::from_service_selector) for the JSON
    /// value of `spec.selector` (null, missing or `{}` select nothing).
    pub fn from_service_selector_json(selector: Option<&Value>) -> Self {
        let map = selector.map(string_map);
        Self::from_service_selector(map.as_ref())
    }

    /// A `metav1.LabelSelector` (matchLabels + matchExpressions), as in a
    /// Deployment's `spec.selector`: missing (None) selects nothing, an
    /// empty selector everything.
    pub fn from_label_selector(selector: Option<&TypedLabelSelector>) -> Result<Self, StatusError> {
        let Some(sel) = selector else {
            return Ok(Self::nothing());
        };
        let labels = sel.match_labels.clone().unwrap_or_default();
        let exprs = sel.match_expressions.clone().unwrap_or_default();
        let exprs: Vec<(String, String, Vec<String>)> = exprs
            .into_iter()
            .map(|e| (e.key, e.operator, e.values.unwrap_or_default()))
            .collect();
        Self::from_parts(&labels, &exprs).map_err(StatusError::bad_request)
    }

    /// [`from_label_selector`](Self::from_label_selector) for JSON
    /// (`null` or missing selects nothing).
    pub fn from_label_selector_json(selector: Option<&Value>) -> Result<Self, StatusError> {
        let Some(sel) = selector.filter(|v| !v.is_null()) else {
            return Ok(Self::nothing());
        };
        let labels = string_map(sel.get("matchLabels").unwrap_or(&Value::Null));
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let exprs: Vec<(String, String, Vec<String>)> = sel
            .get("matchExpressions")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|e| {
                        let values = e
                            .get("values")
                            .and_then(Value::as_array)
                            .map(|vs| {
                                vs.iter()
                                    .filter_map(|v| v.as_str().map(String::from))
                                    .collect()
                            })
                            .unwrap_or_default();
                        (text(e, "key"), text(e, "operator"), values)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Self::from_parts(&labels, &exprs).map_err(StatusError::bad_request)
    }

    fn from_parts(
        labels: &BTreeMap<String, String>,
        exprs: &[(String, String, Vec<String>)],
    ) -> Result<Self, String> {
        if labels.is_empty() && exprs.is_empty() {
            return Ok(Self::everything());
        }
        let mut requirements = Vec::new();
        for (k, v) in labels {
            requirements.push(new_requirement(k, Operator::Equals, vec![v.clone()])?);
        }
        for (key, op, values) in exprs {
            let op = match op.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(format!(
                        "{} is not a valid label selector operator",
                        quote(other)
                    ))
                }
            };
            requirements.push(new_requirement(key, op, values.clone())?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when every object matches.
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The value a key must have when the selector pins it to one value
    /// (`app=web`, `app in (web)`).
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }

    fn matches_lookup(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(lookup))
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_lookup(&|k| labels.get(k).cloned())
    }

    /// Match a JSON labels map (`{"app":"web"}`); anything else counts as
    /// no labels.
    pub fn matches_json(&self, labels: &Value) -> bool {
        self.matches_lookup(&|k| labels.get(k).and_then(Value::as_str).map(String::from))
    }

    /// Match an object by its `metadata.labels`.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches_json(obj.pointer("/metadata/labels").unwrap_or(&Value::Null))
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (`app=web,tier in (a,b)`); empty for
    /// both everything and nothing, as in Kubernetes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nothing {
            return Ok(());
        }
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        write!(f, "{}", parts.join(","))
    }
}

/// A JSON object of strings as a map; non-string values and non-objects
/// are ignored.
fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}
