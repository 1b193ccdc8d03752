//! Strict field checking (`fieldValidation=Strict`, what `kubectl apply`
//! asks for): the fields of an input that its kind does not have, as
//! dotted paths (`spec.foo`, `spec.ports[0].bar`).
//!
//! The k8s-openapi types know their fields: their deserializers skip an
//! unknown key by reading it as `serde::de::IgnoredAny`. Reading the input
//! through a deserializer that notes where that happens finds exactly the
//! unknown fields, at any depth, without a second schema to keep in step.

use std::cell::RefCell;
use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{Endpoints, Event, Namespace, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use serde::Deserializer;
use serde_json::Value;

/// The unknown fields of `obj` for its `kind`, in input order. Empty for
/// kinds minik8s does not type, and for a valid input. If the input does
/// not decode at all (a wrong type somewhere), the unknown fields seen
/// before the failure are returned; decoding reports the failure itself.
pub fn unknown_fields(kind: &str, obj: &Value) -> Vec<String> {
    match kind {
        "Service" => scan::<Service>(obj),
        "Pod" => scan::<Pod>(obj),
        "Endpoints" => scan::<Endpoints>(obj),
        "EndpointSlice" => scan::<EndpointSlice>(obj),
        "Deployment" => scan::<Deployment>(obj),
        "ReplicaSet" => scan::<ReplicaSet>(obj),
        "Namespace" => scan::<Namespace>(obj),
        "Node" => scan::<Node>(obj),
        "Event" => scan::<Event>(obj),
        "Scale" => scan::<Scale>(obj),
        _ => Vec::new(),
    }
}

/// The message Kubernetes' strict decoding gives:
/// `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"`.
pub fn strict_error_message(unknown: &[String]) -> String {
    let fields: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field {f:?}"))
        .collect();
    format!("strict decoding error: {}", fields.join(", "))
}

fn scan<T: DeserializeOwned>(obj: &Value) -> Vec<String> {
    let found = RefCell::new(Vec::new());
    let _ = T::deserialize(PathDe {
        value: obj,
        path: String::new(),
        found: &found,
    });
    found.into_inner()
}

#[derive(Debug)]
struct ScanError(String);

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanError {}

impl de::Error for ScanError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        ScanError(msg.to_string())
    }
}

/// A deserializer over a JSON value that knows where in the input it is.
struct PathDe<'a> {
    value: &'a Value,
    path: String,
    found: &'a RefCell<Vec<String>>,
}

fn child_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

impl<'de> Deserializer<'de> for PathDe<'_> {
    type Error = ScanError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ScanError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(0.0))
                }
            }
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: self.path,
                found: self.found,
            }),
            Value::Object(map) => visitor.visit_map(Map {
                entries: map.iter(),
                pending: None,
                path: self.path,
                found: self.found,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ScanError> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// An unknown field: the typed deserializer skips it.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, ScanError> {
        self.found.borrow_mut().push(self.path);
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, ScanError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, ScanError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            _ => Err(de::Error::custom("expected a string for an enum")),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<'a> {
    items: std::slice::Iter<'a, Value>,
    index: usize,
    path: String,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> SeqAccess<'de> for Seq<'_> {
    type Error = ScanError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, ScanError> {
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        let path = format!("{}[{}]", self.path, self.index);
        self.index += 1;
        seed.deserialize(PathDe {
            value: item,
            path,
            found: self.found,
        })
        .map(Some)
    }
}

struct Map<'a> {
    entries: serde_json::map::Iter<'a>,
    pending: Option<(&'a String, &'a Value)>,
    path: String,
    found: &'a RefCell<Vec<String>>,
}

impl<'de> MapAccess<'de> for Map<'_> {
    type Error = ScanError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, ScanError> {
        let Some((k, v)) = self.entries.next() else {
            return Ok(None);
        };
        self.pending = Some((k, v));
        let key: de::value::StrDeserializer<'_, ScanError> = k.as_str().into_deserializer();
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ScanError> {
        let (k, v) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("value before key"))?;
        seed.deserialize(PathDe {
            value: v,
            path: child_path(&self.path, k),
            found: self.found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_service_has_no_unknown_fields() {
        let svc = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"a": "b"}, "creationTimestamp": null},
            "spec": {"type": "NodePort", "selector": {"app": "web"},
                     "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080, "protocol": "TCP"}]},
            "status": {"loadBalancer": {}}});
        assert_eq!(unknown_fields("Service", &svc), Vec::<String>::new());
    }

    #[test]
    fn finds_unknown_fields_at_any_depth() {
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "nmae": "x"},
            "spec": {"foo": 1, "ports": [{"port": 80}, {"port": 81, "bar": {"deep": true}}]}});
        let unknown = unknown_fields("Service", &svc);
        assert_eq!(
            unknown,
            vec!["metadata.nmae", "spec.foo", "spec.ports[1].bar"]
        );
        assert_eq!(
            strict_error_message(&unknown[1..2]),
            "strict decoding error: unknown field \"spec.foo\""
        );
    }

    #[test]
    fn deployment_template_fields() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx", "imagePullPolicy": "Always",
                                                           "ports": [{"containerPort": 80, "hostPrt": 80}],
                                                           "resources": {"limits": {"cpu": "500m", "memory": "64Mi"}}}]}}}});
        assert_eq!(
            unknown_fields("Deployment", &d),
            vec!["spec.template.spec.containers[0].ports[0].hostPrt"]
        );
    }

    #[test]
    fn times_quantities_and_int_or_strings_decode() {
        let p = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "x", "creationTimestamp": "2024-05-03T11:55:00Z",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u", "controller": true}]},
            "spec": {"containers": [{"name": "c", "image": "nginx",
                "resources": {"requests": {"cpu": "100m"}},
                "readinessProbe": {"httpGet": {"port": "http", "path": "/"}, "periodSeconds": 5}}]},
            "status": {"phase": "Running", "startTime": "2024-05-03T11:55:01Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-03T11:55:02Z"}],
                "containerStatuses": [{"name": "c", "image": "nginx", "imageID": "", "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2024-05-03T11:55:02Z"}}, "bogus": 1}]}});
        assert_eq!(
            unknown_fields("Pod", &p),
            vec!["status.containerStatuses[0].bogus"]
        );
    }

    #[test]
    fn unknown_fields_are_found_even_when_decoding_fails() {
        // A Pod without containers does not decode (containers is required),
        // but the unknown field before the end is still reported.
        let p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {"contaners": []}});
        assert_eq!(unknown_fields("Pod", &p), vec!["spec.contaners"]);
        assert!(unknown_fields("ConfigMap", &p).is_empty());
    }
}
