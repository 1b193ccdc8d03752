//! Names of the kernel objects minik8s creates, derived from configuration
//! and Pod identity only, so a restarted server finds what a crashed one
//! left behind and two servers with different prefixes never collide.

/// Linux refuses interface names longer than IFNAMSIZ - 1.
pub const MAX_IFNAME_LEN: usize = 15;

/// Name of the Pod's interface inside its sandbox and of the node's
/// interface inside the node netns, as on a real machine.
pub const POD_IFNAME: &str = "eth0";

/// The node's Pod bridge, named like the CNI bridge plugin's default.
pub const BRIDGE_IFNAME: &str = "cni0";

/// Kernel rules for interface names: non-empty, at most 15 bytes, no `/`,
/// `:` or whitespace, not `.` or `..`.
pub fn is_valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

/// Host side of the host<->node veth: `<prefix>-<node>-h`, where `<node>` is
/// the node netns name without a leading `minik8s-` or `<prefix>-` (so the
/// default is `mk-node-h`); when that is longer than 15 bytes the node part
/// becomes a hash, which stays stable across restarts.
pub fn node_host_veth_name(prefix: &str, node_name: &str) -> String {
    let short = node_name
        .strip_prefix("minik8s-")
        .or_else(|| node_name.strip_prefix(&format!("{prefix}-")))
        .unwrap_or(node_name);
    let readable = format!("{prefix}-{short}-h");
    if is_valid_ifname(&readable) {
        return readable;
    }
    let room = MAX_IFNAME_LEN.saturating_sub(prefix.len() + 3).min(8);
    let hash = format!("{:08x}", fnv1a32(node_name.as_bytes()));
    format!("{prefix}-{}-h", &hash[..room])
}

/// Eight lowercase hex characters that identify a Pod in names: the start of
/// its uid when the uid is a UUID (so `ip netns list` can be matched with
/// `kubectl get pod -o yaml`), else a hash of the uid.
pub fn uid8(pod_uid: &str) -> String {
    let hex: String = pod_uid
        .chars()
        .filter(|c| *c != '-')
        .take(8)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 8 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        hex
    } else {
        format!("{:08x}", fnv1a32(pod_uid.as_bytes()))
    }
}

/// Host-side veth of a Pod, inside the node netns: `veth<uid8>`, matching
/// the suffix of the Pod's netns name.
pub fn pod_host_veth_name(pod_uid: &str) -> String {
    format!("veth{}", uid8(pod_uid))
}

/// Longest namespace and Pod name parts kept in a sandbox netns name; the
/// whole name must fit a file name (255 bytes) with room to spare.
const MAX_NS_PART: usize = 63;
const MAX_POD_PART: usize = 100;

/// Sandbox netns name: `<netns_prefix>-<namespace>-<pod>-<uid8>`, e.g.
/// `minik8s-default-web-7d4b9-1a2b3c4d`. Readable in `ip netns list`,
/// unique through the uid part.
pub fn sandbox_netns_name(
    netns_prefix: &str,
    namespace: &str,
    pod_name: &str,
    pod_uid: &str,
) -> String {
    format!(
        "{netns_prefix}-{}-{}-{}",
        sanitize(namespace, MAX_NS_PART),
        sanitize(pod_name, MAX_POD_PART),
        uid8(pod_uid)
    )
}

/// Whether `name` has the shape of a sandbox netns of this prefix: the
/// prefix, at least one middle part, and an 8-hex-digit uid suffix. Used to
/// find sandboxes a crashed server left without recording them.
pub fn looks_like_sandbox_netns(netns_prefix: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(netns_prefix) else {
        return false;
    };
    let Some(rest) = rest.strip_prefix('-') else {
        return false;
    };
    let Some((middle, suffix)) = rest.rsplit_once('-') else {
        return false;
    };
    !middle.is_empty()
        && suffix.len() == 8
        && suffix
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
}

/// Keeps a name part file-name safe and short: lowercase DNS characters
/// stay, anything else becomes `-`.
fn sanitize(part: &str, max: usize) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(max)
        .collect();
    if cleaned.is_empty() {
        "x".to_string()
    } else {
        cleaned
    }
}

/// FNV-1a, 32 bit: a stable, dependency-free hash for short names (not for
/// security; collisions surface as EEXIST when the link is created).
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in bytes {
        hash ^= u32::from(*b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_node_host_veth_is_readable() {
        assert_eq!(node_host_veth_name("mk", "minik8s-node"), "mk-node-h");
    }

    #[test]
    fn node_host_veth_strips_own_prefix() {
        assert_eq!(
            node_host_veth_name("mkt4821", "mkt4821-node"),
            "mkt4821-node-h"
        );
    }

    #[test]
    fn long_node_host_veth_is_hashed_and_fits() {
        let a = node_host_veth_name("mkt12345", "a-very-long-node-name");
        let b = node_host_veth_name("mkt12345", "another-long-node-name");
        assert!(is_valid_ifname(&a), "{a}");
        assert!(is_valid_ifname(&b), "{b}");
        assert!(a.starts_with("mkt12345-") && a.ends_with("-h"), "{a}");
        assert_ne!(a, b);
        // Stable across calls (a restarted server must find it again).
        assert_eq!(a, node_host_veth_name("mkt12345", "a-very-long-node-name"));
    }

    #[test]
    fn uid8_uses_uuid_start_or_hash() {
        assert_eq!(uid8("1A2B3C4D-0000-4000-8000-000000000000"), "1a2b3c4d");
        assert_eq!(uid8("1a2b-3c4d-rest"), "1a2b3c4d");
        let hashed = uid8("pod-uid-1");
        assert_eq!(hashed.len(), 8);
        assert!(hashed.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(uid8("pod-uid-1"), uid8("pod-uid-2"));
    }

    #[test]
    fn pod_host_veth_fits_ifnamsiz() {
        let name = pod_host_veth_name("6f1c2d3e-aaaa-bbbb-cccc-000000000001");
        assert_eq!(name, "veth6f1c2d3e");
        assert!(is_valid_ifname(&name));
    }

    #[test]
    fn sandbox_netns_name_is_readable_and_recognised() {
        let name = sandbox_netns_name(
            "minik8s",
            "default",
            "web-7d4b9-x2x4z",
            "1a2b3c4d-0000-4000-8000-000000000000",
        );
        assert_eq!(name, "minik8s-default-web-7d4b9-x2x4z-1a2b3c4d");
        assert!(looks_like_sandbox_netns("minik8s", &name));
        assert!(!looks_like_sandbox_netns("mk", &name));
        assert!(!looks_like_sandbox_netns("minik8s", "minik8s-node"));
        assert!(!looks_like_sandbox_netns("minik8s", "minik8s-1a2b3c4d"));
    }

    #[test]
    fn sandbox_netns_name_sanitizes_and_bounds() {
        let long = "p".repeat(300);
        let name = sandbox_netns_name("mk", "Weird/NS", &long, "x");
        assert!(name.starts_with("mk-weird-ns-"), "{name}");
        assert!(name.len() < 200, "{}", name.len());
        assert!(!name.contains('/'));
        assert!(looks_like_sandbox_netns("mk", &name));
    }

    #[test]
    fn ifname_rules() {
        assert!(is_valid_ifname("cni0"));
        assert!(!is_valid_ifname(""));
        assert!(!is_valid_ifname("a234567890123456"));
        assert!(!is_valid_ifname("a/b"));
        assert!(!is_valid_ifname("a b"));
        assert!(!is_valid_ifname(".."));
    }
}
