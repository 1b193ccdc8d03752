#!/usr/bin/env python3
"""The Python `kubernetes` client (PyPI) against a minik8s API: a second
client that nobody here wrote. Creates, lists, watches (ADDED, DELETED) and
deletes Services and reads Endpoints, checking each answer the way a user's
script would rely on it.

Usage: client_check.py URL
Prints one `ok: ...` line per check; exits 1 on the first failure.
"""

import sys
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

NS = "default"


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    print(f"ok: {msg}", flush=True)


def check(cond, msg):
    if not cond:
        fail(msg)
    ok(msg)


def service(name, selector):
    return client.V1Service(
        api_version="v1",
        kind="Service",
        metadata=client.V1ObjectMeta(name=name, labels={"suite": "python-client"}),
        spec=client.V1ServiceSpec(
            type="ClusterIP",
            selector=selector,
            ports=[client.V1ServicePort(port=80, target_port=80, protocol="TCP")],
        ),
    )


def watch_services(core, rv, names, seen, ready, done):
    """Collect (type, name) of Service events for `names` from `rv` on,
    until both ADDED and DELETED were seen for every name, or timeout."""
    w = watch.Watch()
    ready.set()
    try:
        for ev in w.stream(
            core.list_namespaced_service,
            NS,
            resource_version=rv,
            label_selector="suite=python-client",
            timeout_seconds=30,
        ):
            obj = ev["object"]
            # The client decodes each event's object into a V1Service.
            if not isinstance(obj, client.V1Service):
                seen.append(("BAD-TYPE", type(obj).__name__))
                break
            seen.append((ev["type"], obj.metadata.name))
            if all(("DELETED", n) in seen for n in names):
                break
    except Exception as e:  # reported by the main thread
        seen.append(("EXCEPTION", repr(e)))
    finally:
        w.stop()
        done.set()


def main():
    if len(sys.argv) != 2:
        fail("usage: client_check.py URL")
    cfg = client.Configuration()
    cfg.host = sys.argv[1]
    api = client.ApiClient(cfg)
    core = client.CoreV1Api(api)

    # /version through the client's own model.
    v = client.VersionApi(api).get_code()
    check(bool(v.git_version) and v.major == "1", f"version {v.git_version} (major {v.major}, minor {v.minor})")

    # The API server's own Service and Endpoints.
    k = core.read_namespaced_service("kubernetes", NS)
    check(k.spec.cluster_ip == "10.96.0.1" and k.spec.ports[0].port == 443, "read Service kubernetes: 10.96.0.1:443")
    ep = core.read_namespaced_endpoints("kubernetes", NS)
    addrs = [a.ip for s in (ep.subsets or []) for a in (s.addresses or [])]
    ports = [p.port for s in (ep.subsets or []) for p in (s.ports or [])]
    check(len(addrs) == 1 and len(ports) == 1, f"read Endpoints kubernetes: {addrs} {ports}")

    initial = core.list_namespaced_service(NS, label_selector="suite=python-client")
    check(initial.items == [], "list Services by label: none yet")
    rv = initial.metadata.resource_version
    check(bool(rv), f"list carries resourceVersion {rv}")

    names = ["py-web", "py-other"]
    seen, ready, done = [], threading.Event(), threading.Event()
    t = threading.Thread(target=watch_services, args=(core, rv, names, seen, ready, done), daemon=True)
    t.start()
    ready.wait()

    created = core.create_namespaced_service(NS, service("py-web", {"app": "web"}))
    check(
        created.metadata.name == "py-web" and created.metadata.uid and created.spec.cluster_ip,
        f"create Service py-web: clusterIP {created.spec.cluster_ip}",
    )
    core.create_namespaced_service(NS, service("py-other", {"app": "nothing"}))
    ok("create Service py-other")

    try:
        core.create_namespaced_service(NS, service("py-web", {"app": "web"}))
        fail("creating py-web twice succeeded")
    except ApiException as e:
        check(e.status == 409 and "AlreadyExists" in e.body, f"create twice: 409 AlreadyExists")

    listed = core.list_namespaced_service(NS, label_selector="suite=python-client")
    got = sorted(s.metadata.name for s in listed.items)
    check(got == ["py-other", "py-web"], f"list Services: {got}")
    all_ns = core.list_service_for_all_namespaces()
    check(
        {"kubernetes", "py-web", "py-other"} <= {s.metadata.name for s in all_ns.items},
        "list Services in all namespaces",
    )

    # Endpoints of a Service, written by minik8s' endpoints controller.
    deadline = time.time() + 30
    while True:
        try:
            ep = core.read_namespaced_endpoints("py-web", NS)
            break
        except ApiException as e:
            if e.status != 404 or time.time() > deadline:
                fail(f"read Endpoints py-web: {e.status} {e.body}")
            time.sleep(0.2)
    check(ep.metadata.name == "py-web", f"read Endpoints py-web: subsets {ep.subsets}")
    eps = core.list_namespaced_endpoints(NS)
    check("py-web" in {e.metadata.name for e in eps.items}, "list Endpoints")

    patched = core.patch_namespaced_service("py-web", NS, {"metadata": {"labels": {"tier": "front"}}})
    check(patched.metadata.labels.get("tier") == "front", "patch Service py-web")

    for n in names:
        st = core.delete_namespaced_service(n, NS)
        check(st is not None, f"delete Service {n}")
    try:
        core.read_namespaced_service("py-web", NS)
        fail("py-web still there after delete")
    except ApiException as e:
        check(e.status == 404 and "NotFound" in e.body, "read deleted Service: 404 NotFound")

    done.wait(30)
    for n in names:
        check(("ADDED", n) in seen, f"watch saw ADDED {n} (events: {seen})")
        check(("DELETED", n) in seen, f"watch saw DELETED {n} (events: {seen})")
    check(all(ty in ("ADDED", "MODIFIED", "DELETED") for ty, _ in seen), f"watch events all typed: {seen}")
    print("python client: all checks passed", flush=True)


if __name__ == "__main__":
    main()
