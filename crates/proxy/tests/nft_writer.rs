//! minik8s' netlink rule writer against the real iptables-restore (root):
//! the same payloads applied both ways, in two throw-away network
//! namespaces, must leave identical rules, as `iptables-save` and `nft`
//! print them (so expressions, xt info structs and counters match too).

use proxy::model::ServicePort;
use proxy::plan::{plan_rules, NodeContext};
use proxy::planner::ChangedChains;
use proxy::restore::{render_cleanup, render_full, render_partial};
use std::process::{Command, Stdio};

fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        panic!("this test needs root (network namespaces, nf_tables); euid is {euid}");
    }
}

/// A named network namespace removed when dropped, even on a panic.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("mk-nft-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Netns(name)
    }
    fn path(&self) -> std::path::PathBuf {
        format!("/run/netns/{}", self.0).into()
    }
    fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec");
        let input = stdin.unwrap_or_default().to_string();
        let mut pipe = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let _ = pipe.write_all(input.as_bytes());
        });
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
    /// The rules as iptables-save and nft print them, without the lines
    /// that differ between any two runs (dates, handles).
    fn rules(&self) -> String {
        let save = self.run(&["iptables-save"], None);
        let nft = self.run(&["nft", "--debug=netlink", "list", "ruleset"], None);
        let save: Vec<&str> = save.lines().filter(|l| !l.starts_with('#')).collect();
        // "ip nat KUBE-SEP-X 23 22": drop the rule handles.
        let nft: Vec<String> = nft
            .lines()
            .map(|l| {
                if l.starts_with("ip ") {
                    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
                } else {
                    l.to_string()
                }
            })
            .collect();
        format!("{}\n----\n{}", save.join("\n"), nft.join("\n"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn port(name: &str, ip: &str, proto: &str, endpoints: &[(&str, u16)]) -> ServicePort {
    ServicePort::cluster_ip("default", name, proto, ip, 80, endpoints)
}

/// Services using every kind of rule the planner writes.
fn every_kind() -> Vec<ServicePort> {
    let mut web = port(
        "web",
        "10.96.142.31",
        "tcp",
        &[("10.244.0.5", 80), ("10.244.0.6", 80), ("10.244.0.7", 80)],
    );
    web.node_port = Some(30080);
    web.load_balancer_ips = vec!["172.18.255.1".parse().unwrap()];
    let mut sticky = port(
        "sticky",
        "10.96.0.40",
        "tcp",
        &[("10.244.0.8", 8080), ("10.244.0.9", 8080)],
    );
    sticky.affinity_timeout = Some(10800);
    sticky.external_ips = vec!["192.168.49.10".parse().unwrap()];
    let dns = port("dns", "10.96.0.10", "udp", &[("10.244.0.1", 53)]);
    let mut empty = port("empty", "10.96.0.50", "udp", &[]);
    empty.node_port = Some(30053);
    empty.external_ips = vec!["192.168.49.11".parse().unwrap()];
    vec![web, sticky, dns, empty]
}

fn node(cidr: &str) -> NodeContext {
    NodeContext {
        cluster_cidr: cidr.into(),
    }
}

/// Applies `payload` with iptables-restore in one namespace and with the
/// netlink writer in the other, then compares.
fn apply_both(restored: &Netns, written: &Netns, payload: &str, replace: bool) {
    let mut args = vec!["iptables-restore", "--wait"];
    if !replace {
        args.push("--noflush");
    }
    restored.run(&args, Some(payload));
    if let Err(e) = proxy::nft::NftWriter::new(written.path()).apply(payload, replace) {
        panic!("netlink writer: {e:?}\npayload:\n{payload}");
    }
    let (want, got) = (restored.rules(), written.rules());
    if want != got {
        panic!(
            "rules differ (< iptables-restore, > netlink writer):\n{}",
            diff(&want, &got)
        );
    }
}

#[test]
fn writes_the_same_rules_as_iptables_restore() {
    require_root();
    let (a, b) = (Netns::create("restore"), Netns::create("netlink"));
    // Every rule kind, with a cluster CIDR that is not a whole-byte prefix.
    for cidr in ["10.244.0.0/16", "10.244.0.0/20"] {
        let rules = plan_rules(&every_kind(), &node(cidr));
        apply_both(&a, &b, &render_full(&rules), true);
        // Replacing tables that already hold rules.
        apply_both(&a, &b, &render_full(&rules), true);
    }

    // A partial sync: one endpoint of web replaced, sticky gone.
    let before = plan_rules(&every_kind(), &node("10.244.0.0/16"));
    let mut ports = every_kind();
    ports[0].endpoints[0].ip = "10.244.0.99".parse().unwrap();
    ports.remove(1);
    let after = plan_rules(&ports, &node("10.244.0.0/16"));
    let changed = ChangedChains {
        nat: changed(&before.nat, &after.nat),
        filter: changed(&before.filter, &after.filter),
    };
    let partial = render_partial(&after, &changed).expect("something changed");
    apply_both(&a, &b, &partial, false);
    assert!(!a.rules().contains("sticky"), "{partial}");

    // Many Services: the large-cluster form (no comments on endpoints).
    let many: Vec<ServicePort> = (0..150)
        .map(|s| {
            let eps: Vec<String> = (0..8)
                .map(|e| format!("10.244.{}.{}", s / 20, 10 + e * 20 + s % 20))
                .collect();
            let eps: Vec<(&str, u16)> = eps.iter().map(|ip| (ip.as_str(), 8080)).collect();
            port(&format!("svc-{s}"), &format!("10.96.1.{s}"), "tcp", &eps)
        })
        .collect();
    let rules = plan_rules(&many, &node("10.244.0.0/16"));
    apply_both(&a, &b, &render_full(&rules), true);

    // Cleanup empties both tables.
    apply_both(&a, &b, &render_cleanup(), true);
}

/// `diff`'s view of two texts, through temporary files removed after.
fn diff(a: &str, b: &str) -> String {
    let dir = std::env::temp_dir();
    let pa = dir.join(format!("mk-nft-{}-a", std::process::id()));
    let pb = dir.join(format!("mk-nft-{}-b", std::process::id()));
    std::fs::write(&pa, a).unwrap();
    std::fs::write(&pb, b).unwrap();
    let out = Command::new("diff")
        .arg(&pa)
        .arg(&pb)
        .output()
        .expect("diff");
    let _ = std::fs::remove_file(&pa);
    let _ = std::fs::remove_file(&pb);
    String::from_utf8_lossy(&out.stdout)
        .chars()
        .take(4000)
        .collect()
}

fn changed(
    before: &proxy::plan::Chains,
    after: &proxy::plan::Chains,
) -> std::collections::BTreeSet<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

#[test]
fn a_refused_batch_changes_nothing_and_says_why() {
    require_root();
    let ns = Netns::create("refused");
    let rules = plan_rules(&every_kind(), &node("10.244.0.0/16"));
    proxy::nft::NftWriter::new(ns.path())
        .apply(&render_full(&rules), true)
        .expect("full sync");
    let before = ns.rules();
    // A jump to a chain that does not exist: the kernel refuses the rule,
    // and with it the whole batch, including the flush before it.
    let bad = "*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j KUBE-SVC-MISSING\nCOMMIT\n";
    match proxy::nft::NftWriter::new(ns.path()).apply(bad, false) {
        Err(proxy::nft::NftError::Kernel(e)) => {
            assert!(e.contains("KUBE-SVC-MISSING"), "{e}");
        }
        other => panic!("expected the kernel to refuse, got {other:?}"),
    }
    assert_eq!(ns.rules(), before, "a refused batch changed the rules");
}

#[test]
fn input_the_writer_cannot_encode_goes_to_iptables_restore() {
    use proxy::{Backend, IptablesInNetns, RuleWriter};
    require_root();
    let ns = Netns::create("fallback");
    // `-i` is nothing the planner writes: refused by the netlink writer,
    // written by iptables-restore.
    let payload = "*filter\n:INPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n-A KUBE-FORWARD -i lo -j ACCEPT\nCOMMIT\n";
    assert!(matches!(
        proxy::nft::NftWriter::new(ns.path()).apply(payload, true),
        Err(proxy::nft::NftError::Unsupported(_))
    ));
    let writer = IptablesInNetns::new(ns.path(), Backend::Netlink);
    writer
        .restore(payload, true)
        .expect("written by iptables-restore");
    assert!(ns.rules().contains("-A KUBE-FORWARD -i lo -j ACCEPT"));
}

#[test]
fn a_change_by_someone_else_is_seen() {
    use proxy::{Backend, IptablesInNetns, RuleWriter};
    require_root();
    let ns = Netns::create("touched");
    let writer = IptablesInNetns::new(ns.path(), Backend::Netlink);
    assert_eq!(
        writer.untouched_since_last_write(),
        None,
        "nothing written yet"
    );
    let rules = plan_rules(&every_kind(), &node("10.244.0.0/16"));
    writer.restore(&render_full(&rules), true).unwrap();
    assert_eq!(writer.untouched_since_last_write(), Some(true));
    // Reading the rules changes nothing.
    ns.run(&["iptables-save"], None);
    assert_eq!(writer.untouched_since_last_write(), Some(true));
    ns.run(&["iptables", "-t", "nat", "-F", "KUBE-SERVICES"], None);
    assert_eq!(writer.untouched_since_last_write(), Some(false));
    writer.restore(&render_full(&rules), true).unwrap();
    assert_eq!(writer.untouched_since_last_write(), Some(true));
}
