//! Cluster DNS (issue 5), asked from inside a Pod: the chapter's three
//! `nslookup`s, curl by short name and FQDN, the Pod's resolv.conf, an
//! ExternalName CNAME, a headless Service's Pod IPs, and answers that
//! follow Service changes. The server runs with `--dns-upstream none`: no
//! name outside cluster.local is ever resolved.

use super::*;
use std::collections::BTreeSet;
use std::process::Command;

/// `dig` from the host straight at the kube-dns ClusterIP (routed into the
/// node): fast enough to time how quickly answers follow the API.
fn host_dig(c: &Cluster, name: &str) -> String {
    let server = format!("@{}", c.dns_ip());
    let out = Command::new("dig")
        .args([
            server.as_str(),
            "+tries=1",
            "+time=1",
            "+norecurse",
            name,
            "A",
        ])
        .output()
        .expect("run dig");
    stdout(&out)
}

fn dig_status(answer: &str) -> Option<String> {
    let i = answer.find("status: ")?;
    Some(answer[i + 8..].split(',').next()?.to_string())
}

fn dig_addresses(answer: &str) -> BTreeSet<String> {
    answer
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 5 && f[3] == "A").then(|| f[4].to_string())
        })
        .collect()
}

#[test]
fn pods_resolve_services_by_short_name_and_fqdn() {
    let c = Cluster::start("dns", &[]);
    c.apply(&example("web-deploy.yaml"));
    c.apply(&example("web-svc.yaml"));
    c.ready_pods("app=web", 3);
    let cip = c.cluster_ip("web");
    let tmp = c.client_pod("tmp");
    let tmp = name_of(&tmp);

    let dns = c.dns_ip();
    let short = squash(&c.exec_ok(tmp, &["nslookup", "web"]));
    assert!(short.contains(&format!("Server: {dns}\n")), "{short}");
    assert!(short.contains(&format!("Address: {dns}#53\n")), "{short}");
    assert!(
        short.contains(&format!(
            "Name: web.default.svc.cluster.local\nAddress: {cip}"
        )),
        "{short}"
    );
    let fqdn = squash(&c.exec_ok(tmp, &["nslookup", "web.default.svc.cluster.local"]));
    assert!(
        fqdn.contains(&format!(
            "Name: web.default.svc.cluster.local\nAddress: {cip}"
        )),
        "{fqdn}"
    );
    let api = squash(&c.exec_ok(tmp, &["nslookup", "kubernetes.default.svc.cluster.local"]));
    let want = format!(
        "Name: kubernetes.default.svc.cluster.local\nAddress: {}",
        c.kubernetes_ip()
    );
    assert!(
        api.contains(&format!("{want}\n")) || api.ends_with(&want),
        "{api}"
    );

    for url in ["http://web", "http://web.default.svc.cluster.local"] {
        let out = c.exec_ok(tmp, &["sh", "-c", &format!("curl -s -m 5 {url} | head -1")]);
        assert_eq!(out.trim(), "<!DOCTYPE html>", "curl {url}");
    }

    let resolv = c.exec_ok(tmp, &["cat", "/etc/resolv.conf"]);
    assert_eq!(
        resolv
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        [
            format!("nameserver {dns}").as_str(),
            "search default.svc.cluster.local svc.cluster.local cluster.local",
            "options ndots:5"
        ],
        "{resolv}"
    );

    // A name that does not exist in the zone: NXDOMAIN, not a timeout.
    let missing = c.exec(
        tmp,
        &["nslookup", "nosuchservice.default.svc.cluster.local"],
    );
    assert!(
        stdout(&missing).contains("NXDOMAIN"),
        "{}{}",
        stdout(&missing),
        stderr(&missing)
    );
    c.stop_clean();
}

#[test]
fn external_name_is_a_cname_and_headless_gives_pod_ips() {
    let c = Cluster::start("dns-kinds", &[]);
    c.apply(&example("web-deploy.yaml"));
    c.apply(&example("db-externalname.yaml"));
    c.apply(&example("web-headless.yaml"));
    let pods = c.ready_pods("app=web", 3);
    let tmp = c.client_pod("tmp");
    let tmp = name_of(&tmp);

    // Only the CNAME is asked for: db.example.com itself is never resolved.
    let cname = c.exec_ok(
        tmp,
        &[
            "dig",
            "+short",
            "+norecurse",
            "db.default.svc.cluster.local",
            "CNAME",
        ],
    );
    assert_eq!(cname.trim(), "db.example.com.");
    let full = c.exec_ok(
        tmp,
        &["dig", "+norecurse", "db.default.svc.cluster.local", "CNAME"],
    );
    assert!(
        full.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 5
                && f[0] == "db.default.svc.cluster.local."
                && f[3] == "CNAME"
                && f[4] == "db.example.com."
        }),
        "{full}"
    );
    let (ty, external) = {
        let rows = table_rows(&c.ok(&["get", "svc", "db"]));
        (rows[1][1].clone(), rows[1][3].clone())
    };
    assert_eq!(
        (ty.as_str(), external.as_str()),
        ("ExternalName", "db.example.com")
    );

    // Headless: one A record per ready Pod.
    let want: BTreeSet<String> = pods.iter().map(pod_ip).collect();
    let got = c.exec_ok(
        tmp,
        &[
            "dig",
            "+short",
            "web-headless.default.svc.cluster.local",
            "A",
        ],
    );
    let got: BTreeSet<String> = got.split_whitespace().map(str::to_string).collect();
    assert_eq!(got, want);
    let short = squash(&c.exec_ok(tmp, &["nslookup", "web-headless"]));
    for ip in &want {
        assert!(short.contains(&format!("Address: {ip}")), "{short}");
    }

    // The answers follow the ready Pods.
    c.ok(&["scale", "deployment", "web", "--replicas=2"]);
    let two = c.ready_pods("app=web", 2);
    let want: BTreeSet<String> = two.iter().map(pod_ip).collect();
    crate::support::eventually(Duration::from_secs(5), "headless answers to follow", || {
        (dig_addresses(&host_dig(&c, "web-headless.default.svc.cluster.local")) == want)
            .then_some(())
    });
    c.stop_clean();
}

#[test]
fn new_service_resolves_and_deleted_one_is_nxdomain_quickly() {
    let c = Cluster::start("dns-follow", &[]);
    c.apply(&example("web-deploy.yaml"));
    c.ready_pods("app=web", 3);
    let tmp = c.client_pod("tmp");
    let tmp = name_of(&tmp);
    let name = "web2.default.svc.cluster.local";
    assert_eq!(dig_status(&host_dig(&c, name)).as_deref(), Some("NXDOMAIN"));

    let yaml = std::fs::read_to_string(example("web-svc.yaml"))
        .expect("read web-svc.yaml")
        .replace("name: web\n", "name: web2\n");
    let created = Instant::now();
    c.apply_yaml("web2.yaml", &yaml);
    let applied = created.elapsed();
    let cip = c.cluster_ip("web2");
    let resolved = crate::support::eventually(Duration::from_secs(5), "web2 to resolve", || {
        let ans = host_dig(&c, name);
        (dig_addresses(&ans).contains(&cip)).then(|| created.elapsed())
    });
    assert!(
        resolved < applied + Duration::from_secs(1),
        "web2 resolved {resolved:?} after apply started (apply took {applied:?})"
    );
    let inside = squash(&c.exec_ok(tmp, &["nslookup", "web2"]));
    assert!(inside.contains(&format!("Address: {cip}")), "{inside}");

    let deleting = Instant::now();
    c.ok(&["delete", "svc", "web2"]);
    let deleted = deleting.elapsed();
    let gone = crate::support::eventually(Duration::from_secs(5), "web2 to be NXDOMAIN", || {
        (dig_status(&host_dig(&c, name)).as_deref() == Some("NXDOMAIN")).then(|| deleting.elapsed())
    });
    assert!(
        gone < deleted + Duration::from_secs(1),
        "web2 was NXDOMAIN {gone:?} after delete started (delete took {deleted:?})"
    );
    // Absolute, so that the search list and the bare name (REFUSED with
    // `--dns-upstream none`) do not come into it.
    let inside = c.exec(tmp, &["nslookup", "web2.default.svc.cluster.local."]);
    assert!(stdout(&inside).contains("NXDOMAIN"), "{}", stdout(&inside));
    eprintln!("DNS follows the API: new Service answered after {resolved:?}, deleted one NXDOMAIN after {gone:?}");
    c.stop_clean();
}
