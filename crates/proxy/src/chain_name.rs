//! Chain names as kube-proxy derives them, so `iptables-save` in the node
//! reads like a real node's: a prefix plus 16 base32 characters of a
//! SHA-256 of the service port (and endpoint).

use sha2::{Digest, Sha256};

fn hash16(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    data_encoding::BASE32.encode(&digest)[..16].to_string()
}

/// `KUBE-SVC-...` for a service port name like `default/web:http` and a
/// protocol (`tcp`).
pub fn service_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-SVC-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-EXT-...`: the entry for traffic from outside (NodePort,
/// LoadBalancer, external IPs), which is masqueraded.
pub fn external_chain(service_port: &str, protocol: &str) -> String {
    format!("KUBE-EXT-{}", hash16(&format!("{service_port}{protocol}")))
}

/// `KUBE-SEP-...` for one endpoint (`10.244.0.5:80`) of a service port.
pub fn endpoint_chain(service_port: &str, protocol: &str, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{service_port}{protocol}{endpoint}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stable_and_fit_iptables_limit() {
        let a = service_chain("default/web", "tcp");
        assert_eq!(a, service_chain("default/web", "tcp"));
        assert_ne!(a, service_chain("default/web", "udp"));
        assert_eq!(a.len(), "KUBE-SVC-".len() + 16);
        // iptables chain names are limited to 28 characters.
        assert!(endpoint_chain("default/web", "tcp", "10.244.0.5:80").len() <= 28);
    }
}
