//! Generated names: the `pod-template-hash` of a Deployment's template and
//! the random suffixes of `generateName`, both in Kubernetes' alphabet so
//! names look like the ones a reader sees in the book (`web-7c5ddbdf54-x2x4l`).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use rand::Rng;

/// Kubernetes' `rand.String` alphabet: no vowels (so no words are formed by
/// accident), no `0`, `1`, `3` that read like letters.
pub const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` leaves room for this many random characters.
pub const RANDOM_SUFFIX_LEN: usize = 5;

/// Longest name Kubernetes builds from a `generateName` prefix before adding
/// the suffix (63 - 5); longer prefixes are cut.
const MAX_GENERATED_PREFIX: usize = 58;

/// Kubernetes' `rand.SafeEncodeString`: maps every byte of `s` into the
/// alphabet, so a decimal number becomes a name-safe string of equal length.
pub fn safe_encode_string(s: &str) -> String {
    s.bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

/// 32-bit FNV-1a, the hash Kubernetes uses for `pod-template-hash`.
pub fn fnv32a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// The `pod-template-hash` of a template, like Kubernetes' `ComputeHash`:
/// FNV-1a of the template (here its canonical JSON), plus the collision
/// count, printed in decimal and safe-encoded. Equal templates give equal
/// hashes across restarts, so a restarted controller finds its ReplicaSet.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    // Serialising a typed template is deterministic: struct fields in a fixed
    // order, maps are BTreeMaps.
    let mut bytes = serde_json::to_vec(template).unwrap_or_default();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(&(count as u32).to_le_bytes());
    }
    safe_encode_string(&fnv32a(&bytes).to_string())
}

/// `n` random characters from [`ALPHANUMS`].
pub fn random_suffix(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHANUMS[rng.random_range(0..ALPHANUMS.len())] as char)
        .collect()
}

/// What the API server makes of `generateName: <prefix>`: the prefix (cut to
/// leave room) followed by five random characters.
pub fn generate_name(prefix: &str) -> String {
    let cut = if prefix.len() > MAX_GENERATED_PREFIX {
        &prefix[..MAX_GENERATED_PREFIX]
    } else {
        prefix
    };
    format!("{cut}{}", random_suffix(RANDOM_SUFFIX_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "nginx".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn fnv32a_matches_reference_vectors() {
        assert_eq!(fnv32a(b""), 0x811c9dc5);
        assert_eq!(fnv32a(b"a"), 0xe40c292c);
        assert_eq!(fnv32a(b"foobar"), 0xbf9cf968);
    }

    #[test]
    fn safe_encoding_maps_digits_like_kubernetes() {
        // '0'..'9' are bytes 48..57; modulo 27 they land on "456789bcdf".
        assert_eq!(safe_encode_string("0123456789"), "456789bcdf");
    }

    #[test]
    fn template_hash_is_stable_and_sensitive() {
        let a = pod_template_hash(&template("nginx"), None);
        assert_eq!(a, pod_template_hash(&template("nginx"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:1.25"), None));
        assert_ne!(a, pod_template_hash(&template("nginx"), Some(1)));
        assert!(!a.is_empty() && a.len() <= 10);
        assert!(a.bytes().all(|b| b"456789bcdf".contains(&b)));
    }

    #[test]
    fn generated_names_use_the_alphabet() {
        let name = generate_name("web-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("web-"));
        assert!(name[4..].bytes().all(|b| ALPHANUMS.contains(&b)));
        let long = "x".repeat(70);
        assert_eq!(generate_name(&long).len(), 63);
    }
}
