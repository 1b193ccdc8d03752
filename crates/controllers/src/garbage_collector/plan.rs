//! When a dependent loses its owners: Kubernetes' garbage collector with
//! background propagation. Pure; the loop looks owners up and deletes.

use api::registry::{by_kind, ResourceInfo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// What is known about one owner of a dependent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// An object with the reference's name and uid exists.
    Present,
    /// No object with that uid exists (none by that name, or a newer one).
    Absent,
    /// A kind this API does not serve: never assumed gone.
    Unknown,
}

/// What to do with a dependent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// Every owner is gone: delete the dependent.
    Delete,
    /// Some owners are gone: drop those references (uids), keep the object.
    DropReferences(Vec<String>),
}

/// Decide from the state of each owner reference.
pub fn plan_collection(owners: &[(&OwnerReference, OwnerState)]) -> Verdict {
    if owners.is_empty() {
        return Verdict::Keep;
    }
    let absent: Vec<String> = owners
        .iter()
        .filter(|(_, s)| *s == OwnerState::Absent)
        .map(|(r, _)| r.uid.clone())
        .collect();
    if absent.len() == owners.len() {
        Verdict::Delete
    } else if absent.is_empty() {
        Verdict::Keep
    } else {
        Verdict::DropReferences(absent)
    }
}

/// The kind and namespace of an owner: owners live in the dependent's
/// namespace, or are cluster-scoped. None for kinds the API does not serve.
pub fn owner_location<'a>(
    reference: &OwnerReference,
    dependent_namespace: &'a str,
) -> Option<(&'static ResourceInfo, &'a str)> {
    let res = by_kind(&reference.api_version, &reference.kind)?;
    Some((
        res,
        if res.namespaced {
            dependent_namespace
        } else {
            ""
        },
    ))
}

/// The state of an owner given the uid of the object found under its name
/// (None: nothing by that name).
pub fn owner_state(reference: &OwnerReference, found_uid: Option<&str>) -> OwnerState {
    match found_uid {
        Some(uid) if uid == reference.uid => OwnerState::Present,
        _ => OwnerState::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: &str, api_version: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: "owner".into(),
            uid: uid.into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    #[test]
    fn deletes_only_when_every_owner_is_gone() {
        let a = reference("ReplicaSet", "apps/v1", "a");
        let b = reference("Service", "v1", "b");
        assert_eq!(
            plan_collection(&[(&a, OwnerState::Absent)]),
            Verdict::Delete
        );
        assert_eq!(plan_collection(&[(&a, OwnerState::Present)]), Verdict::Keep);
        assert_eq!(
            plan_collection(&[(&a, OwnerState::Absent), (&b, OwnerState::Present)]),
            Verdict::DropReferences(vec!["a".into()])
        );
        assert_eq!(
            plan_collection(&[(&a, OwnerState::Absent), (&b, OwnerState::Unknown)]),
            Verdict::DropReferences(vec!["a".into()])
        );
        assert_eq!(plan_collection(&[]), Verdict::Keep);
    }

    #[test]
    fn a_recreated_owner_is_not_the_owner() {
        let a = reference("Deployment", "apps/v1", "old-uid");
        assert_eq!(owner_state(&a, Some("old-uid")), OwnerState::Present);
        assert_eq!(owner_state(&a, Some("new-uid")), OwnerState::Absent);
        assert_eq!(owner_state(&a, None), OwnerState::Absent);
    }

    #[test]
    fn owners_are_found_by_kind_and_scope() {
        let (res, ns) =
            owner_location(&reference("ReplicaSet", "apps/v1", "x"), "default").unwrap();
        assert_eq!((res.plural, ns), ("replicasets", "default"));
        let (res, ns) = owner_location(&reference("Node", "v1", "x"), "default").unwrap();
        assert_eq!((res.plural, ns), ("nodes", ""));
        assert!(owner_location(&reference("Widget", "example.com/v1", "x"), "default").is_none());
    }
}
