//! The files a Pod sees instead of the host's: /etc/resolv.conf,
//! /etc/hosts and /etc/hostname. Rendering is pure; `write_pod_files` puts
//! them under the Pod's directory, from where every container's mount
//! namespace bind-mounts them.

use k8s_openapi::api::core::v1::{HostAlias, Pod, PodDNSConfig};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// The three files of one Pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PodFiles {
    pub resolv_conf: String,
    pub hosts: String,
    pub hostname: String,
}

/// Cluster DNS settings the files are made from.
#[derive(Debug, Clone)]
pub(crate) struct DnsSettings<'a> {
    pub cluster_dns: Ipv4Addr,
    pub cluster_domain: &'a str,
    /// The host's own /etc/resolv.conf, for dnsPolicy `Default`.
    pub host_resolv_conf: &'a str,
}

/// The Pod's hostname: `spec.hostname`, else its name cut to 63 characters
/// (a hostname is one DNS label), as Kubernetes does.
pub(crate) fn pod_hostname(pod: &Pod) -> String {
    let spec_hostname = pod.spec.as_ref().and_then(|s| s.hostname.clone());
    let name = spec_hostname.unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(['-', '.']).to_string()
}

/// All three files of `pod`, whose address is `pod_ip`.
pub(crate) fn render_pod_files(pod: &Pod, pod_ip: Ipv4Addr, dns: &DnsSettings) -> PodFiles {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let spec = pod.spec.clone().unwrap_or_default();
    let hostname = pod_hostname(pod);
    let fqdn = spec
        .subdomain
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|sub| format!("{hostname}.{sub}.{namespace}.svc.{}", dns.cluster_domain));
    PodFiles {
        resolv_conf: render_resolv_conf(
            namespace,
            spec.dns_policy.as_deref().unwrap_or("ClusterFirst"),
            spec.dns_config.as_ref(),
            dns,
        ),
        hosts: render_hosts(
            pod_ip,
            &hostname,
            fqdn.as_deref(),
            spec.host_aliases.as_deref().unwrap_or(&[]),
        ),
        hostname: format!("{hostname}\n"),
    }
}

/// /etc/resolv.conf for a Pod in `namespace` with the given dnsPolicy and
/// dnsConfig.
pub(crate) fn render_resolv_conf(
    namespace: &str,
    dns_policy: &str,
    dns_config: Option<&PodDNSConfig>,
    dns: &DnsSettings,
) -> String {
    let mut nameservers: Vec<String> = Vec::new();
    let mut searches: Vec<String> = Vec::new();
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    match dns_policy {
        "None" => {}
        "Default" => {
            let host = parse_resolv_conf(dns.host_resolv_conf);
            nameservers = host.0;
            searches = host.1;
            options = host.2;
        }
        // ClusterFirst, and ClusterFirstWithHostNet for a Pod on the Pod
        // network, which is every Pod minik8s runs.
        _ => {
            let d = dns.cluster_domain;
            nameservers.push(dns.cluster_dns.to_string());
            searches = vec![
                format!("{namespace}.svc.{d}"),
                format!("svc.{d}"),
                d.to_string(),
            ];
            options.push(("ndots".into(), Some("5".into())));
        }
    }
    if let Some(cfg) = dns_config {
        for ns in cfg.nameservers.iter().flatten() {
            if !nameservers.contains(ns) {
                nameservers.push(ns.clone());
            }
        }
        for s in cfg.searches.iter().flatten() {
            if !searches.contains(s) {
                searches.push(s.clone());
            }
        }
        for o in cfg.options.iter().flatten() {
            let Some(name) = o.name.clone() else { continue };
            match options.iter_mut().find(|(n, _)| *n == name) {
                Some(existing) => existing.1 = o.value.clone(),
                None => options.push((name, o.value.clone())),
            }
        }
    }
    // The resolver reads at most three nameservers.
    nameservers.truncate(3);
    let mut out = String::new();
    for ns in &nameservers {
        out.push_str(&format!("nameserver {ns}\n"));
    }
    if !searches.is_empty() {
        out.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !options.is_empty() {
        let opts: Vec<String> = options
            .iter()
            .map(|(n, v)| match v {
                Some(v) => format!("{n}:{v}"),
                None => n.clone(),
            })
            .collect();
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

type ResolvParts = (Vec<String>, Vec<String>, Vec<(String, Option<String>)>);

fn parse_resolv_conf(text: &str) -> ResolvParts {
    let mut parts: ResolvParts = Default::default();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => parts.0.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => parts.1 = words.map(str::to_string).collect(),
            Some("options") => {
                for w in words {
                    let (n, v) = match w.split_once(':') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (w.to_string(), None),
                    };
                    parts.2.push((n, v));
                }
            }
            _ => {}
        }
    }
    parts
}

/// /etc/hosts as the kubelet writes it: loopback lines, the Pod's own
/// address and name, then the hostAliases.
pub(crate) fn render_hosts(
    pod_ip: Ipv4Addr,
    hostname: &str,
    fqdn: Option<&str>,
    aliases: &[HostAlias],
) -> String {
    let mut out = String::from(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n",
    );
    match fqdn {
        Some(fqdn) => out.push_str(&format!("{pod_ip}\t{fqdn}\t{hostname}\n")),
        None => out.push_str(&format!("{pod_ip}\t{hostname}\n")),
    }
    if !aliases.is_empty() {
        out.push_str("\n# Entries added by HostAliases.\n");
        for a in aliases {
            let names = a.hostnames.clone().unwrap_or_default().join("\t");
            out.push_str(&format!("{}\t{}\n", a.ip, names));
        }
    }
    out
}

/// The host paths the files are bind-mounted onto, with their source.
pub(crate) fn bind_mounts(dir: &Path) -> Vec<(PathBuf, PathBuf)> {
    vec![
        (dir.join("resolv.conf"), PathBuf::from("/etc/resolv.conf")),
        (dir.join("hosts"), PathBuf::from("/etc/hosts")),
        (dir.join("hostname"), PathBuf::from("/etc/hostname")),
    ]
}

/// Write the files into `dir` (created if missing).
pub(crate) fn write_pod_files(dir: &Path, files: &PodFiles) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("resolv.conf"), &files.resolv_conf)?;
    std::fs::write(dir.join("hosts"), &files.hosts)?;
    std::fs::write(dir.join("hostname"), &files.hostname)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodDNSConfigOption, PodSpec};

    fn dns() -> DnsSettings<'static> {
        DnsSettings {
            cluster_dns: Ipv4Addr::new(10, 96, 0, 10),
            cluster_domain: "cluster.local",
            host_resolv_conf: "nameserver 192.0.2.53\nsearch example.org\noptions edns0\n",
        }
    }

    fn pod(name: &str, ns: &str, spec: PodSpec) -> Pod {
        let mut p = Pod::default();
        p.metadata.name = Some(name.into());
        p.metadata.namespace = Some(ns.into());
        p.spec = Some(spec);
        p
    }

    #[test]
    fn cluster_first_points_at_cluster_dns_with_namespace_search() {
        let files = render_pod_files(
            &pod("tmp", "team-a", PodSpec::default()),
            Ipv4Addr::new(10, 244, 0, 9),
            &dns(),
        );
        assert_eq!(
            files.resolv_conf,
            "nameserver 10.96.0.10\nsearch team-a.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        );
    }

    #[test]
    fn dns_config_adds_servers_searches_and_overrides_options() {
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["1.1.1.1".into()]),
            searches: Some(vec!["corp.example".into()]),
            options: Some(vec![
                PodDNSConfigOption {
                    name: Some("ndots".into()),
                    value: Some("2".into()),
                },
                PodDNSConfigOption {
                    name: Some("edns0".into()),
                    value: None,
                },
            ]),
        };
        let out = render_resolv_conf("default", "ClusterFirst", Some(&cfg), &dns());
        assert_eq!(
            out,
            "nameserver 10.96.0.10\nnameserver 1.1.1.1\nsearch default.svc.cluster.local svc.cluster.local cluster.local corp.example\noptions ndots:2 edns0\n"
        );
    }

    #[test]
    fn default_policy_copies_the_host_and_none_uses_only_dns_config() {
        assert_eq!(
            render_resolv_conf("default", "Default", None, &dns()),
            "nameserver 192.0.2.53\nsearch example.org\noptions edns0\n"
        );
        let cfg = PodDNSConfig {
            nameservers: Some(vec!["9.9.9.9".into()]),
            ..Default::default()
        };
        assert_eq!(
            render_resolv_conf("default", "None", Some(&cfg), &dns()),
            "nameserver 9.9.9.9\n"
        );
    }

    #[test]
    fn hosts_ends_with_the_pod_line_and_aliases() {
        let spec = PodSpec {
            host_aliases: Some(vec![HostAlias {
                ip: "1.2.3.4".into(),
                hostnames: Some(vec!["foo".into(), "bar".into()]),
            }]),
            ..Default::default()
        };
        let files = render_pod_files(
            &pod("web-1", "default", spec),
            Ipv4Addr::new(10, 244, 0, 7),
            &dns(),
        );
        assert!(files
            .hosts
            .starts_with("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"));
        assert!(files.hosts.contains(
            "\n10.244.0.7\tweb-1\n\n# Entries added by HostAliases.\n1.2.3.4\tfoo\tbar\n"
        ));
        assert_eq!(files.hostname, "web-1\n");
    }

    #[test]
    fn hostname_and_subdomain_give_an_fqdn_line() {
        let spec = PodSpec {
            hostname: Some("db-0".into()),
            subdomain: Some("db".into()),
            ..Default::default()
        };
        let files = render_pod_files(
            &pod("x", "prod", spec),
            Ipv4Addr::new(10, 244, 0, 3),
            &dns(),
        );
        assert!(files
            .hosts
            .contains("10.244.0.3\tdb-0.db.prod.svc.cluster.local\tdb-0\n"));
        assert_eq!(files.hostname, "db-0\n");
    }

    #[test]
    fn long_names_are_cut_to_one_dns_label() {
        let long = format!("{}-{}", "a".repeat(62), "b".repeat(10));
        let p = pod(&long, "default", PodSpec::default());
        assert_eq!(pod_hostname(&p), "a".repeat(62));
    }
}
