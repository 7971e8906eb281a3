#!/usr/bin/env python3
"""Render deploy/helm/pdm with each values file in its ci/ folder through
Helm's own engine (the Helm v4 Go SDK, bundled in the PyPI package
helm-python-sdk; no helm binary), lint it, validate every manifest against
the Kubernetes 1.30 schemas (kubernetes-validate, strict: unknown fields
fail), and check what each shape must contain. Writes each rendered
pdm.toml to OUT_DIR/<values>.toml for tests/deploy.rs to feed to the real
binary. Exit status 0 when everything holds; a message per failure.

    render_chart.py CHART_DIR OUT_DIR
"""

import json
import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

K8S = "1.30.0"
FAILURES = []


def fail(msg):
    FAILURES.append(msg)


def render(chart, values, name="pdm", namespace="dns"):
    with helm.Chart.load(str(chart)) as ch:
        out = ch.render(values, name=name, namespace=namespace, is_install=True)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append((path, doc))
    return docs


def by_kind(docs, kind):
    return [d for _, d in docs if d.get("kind") == kind]


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_common(label, docs):
    """What every shape must have, whatever the values."""
    kinds = sorted({d["kind"] for _, d in docs})
    if "Secret" in kinds:
        fail(f"{label}: the chart must not render Secrets (secrets come from existing ones)")
    workloads = by_kind(docs, "StatefulSet") + by_kind(docs, "Deployment")
    if len(workloads) != 1:
        fail(f"{label}: want exactly one workload, got {kinds}")
        return None
    w = workloads[0]
    pod = w["spec"]["template"]["spec"]
    c = next(x for x in pod["containers"] if x["name"] == "pdm")
    for probe, path in [("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")]:
        got = c.get(probe, {}).get("httpGet", {}).get("path")
        if got != path:
            fail(f"{label}: {probe} path {got!r}, want {path}")
    sc = c.get("securityContext", {})
    if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation") is not False:
        fail(f"{label}: container securityContext not hardened: {sc}")
    if sc.get("capabilities", {}).get("drop") != ["ALL"]:
        fail(f"{label}: capabilities not dropped: {sc}")
    if not pod.get("securityContext", {}).get("runAsNonRoot"):
        fail(f"{label}: pod not runAsNonRoot")
    if not c.get("resources", {}).get("requests"):
        fail(f"{label}: no resource requests")
    if not pod.get("topologySpreadConstraints"):
        fail(f"{label}: no topology spread")
    env = env_of(c)
    for secret_env in ["PDM_SECRET_KEY"]:
        if "secretKeyRef" not in env.get(secret_env, {}).get("valueFrom", {}):
            fail(f"{label}: {secret_env} not from a Secret: {env.get(secret_env)}")
    for e in env.values():
        if "KEY" in e["name"] and "value" in e:
            fail(f"{label}: {e['name']} has an inline value")
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    dns = services.get("pdm-dns")
    if not dns:
        fail(f"{label}: no DNS Service in {sorted(services)}")
    else:
        ports = sorted((p["port"], p["protocol"]) for p in dns["spec"]["ports"])
        if ports != [(53, "TCP"), (53, "UDP")]:
            fail(f"{label}: DNS Service ports {ports}")
    if "pdm-api" not in services:
        fail(f"{label}: no API Service")
    selector = w["spec"]["selector"]["matchLabels"]
    labels = w["spec"]["template"]["metadata"]["labels"]
    if any(labels.get(k) != v for k, v in selector.items()):
        fail(f"{label}: the selector does not match the pod labels")
    for s in services.values():
        if any(labels.get(k) != v for k, v in s["spec"]["selector"].items()):
            fail(f"{label}: Service {s['metadata']['name']} selects no pdm pod")
    for kind in ["PodDisruptionBudget", "NetworkPolicy", "ConfigMap", "ServiceAccount"]:
        if not by_kind(docs, kind):
            fail(f"{label}: no {kind}")
    for np in by_kind(docs, "NetworkPolicy"):
        rules = np["spec"]["ingress"]
        open_rules = [r for r in rules if "from" not in r]
        if any(p["port"] == "http" for r in open_rules for p in r["ports"]):
            fail(f"{label}: the API is open to everyone")
    return w


def validate_k8s(label, docs):
    for path, doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com"):
            # A CRD: not in the Kubernetes schemas; checked by shape below.
            continue
        try:
            kubernetes_validate.validate(doc, K8S, strict=True)
        except Exception as e:  # the library raises several error types
            fail(f"{label}: {path} {doc['kind']}: not valid Kubernetes {K8S}: {e}")


def main():
    chart, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    lint = helm.lint(str(chart), None, strict=False, kube_version="v" + K8S)
    errors = [m for m in lint["messages"] if m["severity"] >= 3] + lint["errors"]
    if errors:
        fail(f"helm lint: {errors}")
    shapes = {}
    for values_file in sorted((chart / "ci").glob("*-values.yaml")):
        label = values_file.name.removesuffix("-values.yaml")
        values = yaml.safe_load(values_file.read_text())
        lint = helm.lint(str(chart), values, strict=True, kube_version="v" + K8S)
        errors = [m for m in lint["messages"] if m["severity"] >= 2] + lint["errors"]
        if errors:
            fail(f"{label}: helm lint --strict: {errors}")
        docs = render(chart, values)
        validate_k8s(label, docs)
        w = check_common(label, docs)
        shapes[label] = (docs, w)
        cm = by_kind(docs, "ConfigMap")[0]
        (out_dir / f"{label}.toml").write_text(cm["data"]["pdm.toml"])

    # embedded: one StatefulSet pod owning its volume, migrating in an init container.
    docs, w = shapes.get("embedded", ([], None))
    if w:
        if w["kind"] != "StatefulSet" or w["spec"]["replicas"] != 1:
            fail(f"embedded: want a StatefulSet of 1, got {w['kind']} x{w['spec']['replicas']}")
        if not w["spec"].get("volumeClaimTemplates"):
            fail("embedded: no volumeClaimTemplates")
        inits = [c["args"] for c in w["spec"]["template"]["spec"].get("initContainers", [])]
        if inits != [["migrate"]]:
            fail(f"embedded: init containers {inits}")
        if by_kind(docs, "Job"):
            fail("embedded: no migrate Job expected")
        env = env_of(w["spec"]["template"]["spec"]["containers"][0])
        if not env["PDM_DATABASE_URL"].get("value", "").startswith("sqlite:///var/lib/pdm/"):
            fail(f"embedded: database URL {env['PDM_DATABASE_URL']}")

    # postgres-ha: a Deployment of 3, one migrate hook Job per revision, monitored.
    docs, w = shapes.get("postgres-ha", ([], None))
    if w:
        if w["kind"] != "Deployment" or w["spec"]["replicas"] != 3:
            fail(f"postgres-ha: want a Deployment of 3, got {w['kind']} x{w['spec']['replicas']}")
        jobs = by_kind(docs, "Job")
        if len(jobs) != 1:
            fail(f"postgres-ha: want one migrate Job, got {len(jobs)}")
        else:
            hooks = jobs[0]["metadata"].get("annotations", {}).get("helm.sh/hook", "")
            if sorted(hooks.split(",")) != ["pre-install", "pre-upgrade"]:
                fail(f"postgres-ha: migrate Job hooks {hooks!r}")
            args = jobs[0]["spec"]["template"]["spec"]["containers"][0]["args"]
            if args != ["migrate"]:
                fail(f"postgres-ha: migrate Job args {args}")
        if w["spec"]["template"]["spec"].get("initContainers"):
            fail("postgres-ha: N replicas must not migrate in init containers")
        env = env_of(w["spec"]["template"]["spec"]["containers"][0])
        ref = env["PDM_DATABASE_URL"].get("valueFrom", {}).get("secretKeyRef", {})
        if ref != {"name": "pdm-db-app", "key": "uri"}:
            fail(f"postgres-ha: database URL not from the Secret: {env['PDM_DATABASE_URL']}")
        sms = by_kind(docs, "ServiceMonitor")
        if len(sms) != 1:
            fail("postgres-ha: want a ServiceMonitor")
        else:
            sm = sms[0]
            ep = sm["spec"]["endpoints"][0]
            api = next(s for s in by_kind(docs, "Service") if s["metadata"]["name"] == "pdm-api")
            if ep.get("path") != "/metrics" or ep.get("port") not in [p["name"] for p in api["spec"]["ports"]]:
                fail(f"postgres-ha: ServiceMonitor endpoint {ep}")
            if any(api["metadata"]["labels"].get(k) != v for k, v in sm["spec"]["selector"]["matchLabels"].items()):
                fail("postgres-ha: the ServiceMonitor selects no Service")
            if sm["metadata"]["labels"].get("release") != "kube-prometheus-stack":
                fail("postgres-ha: additionalLabels missing")
        pdb = by_kind(docs, "PodDisruptionBudget")[0]
        if pdb["spec"].get("minAvailable") != 2:
            fail(f"postgres-ha: PDB {pdb['spec']}")

    # powerdns: the backend section, the API key from its Secret.
    docs, w = shapes.get("powerdns", ([], None))
    if w:
        toml = by_kind(docs, "ConfigMap")[0]["data"]["pdm.toml"]
        if 'kind = "powerdns"' not in toml or "api_key" in toml:
            fail(f"powerdns: config {toml}")
        env = env_of(w["spec"]["template"]["spec"]["containers"][0])
        ref = env.get("PDM_POWERDNS_API_KEY", {}).get("valueFrom", {}).get("secretKeyRef")
        if ref != {"name": "powerdns-api-key", "key": "api-key"}:
            fail(f"powerdns: API key not from its Secret: {env.get('PDM_POWERDNS_API_KEY')}")

    # Values that cannot work are refused at render time.
    base = yaml.safe_load((chart / "ci" / "embedded-values.yaml").read_text())
    for what, override in [
        ("embedded with 3 replicas", {"replicaCount": 3}),
        ("no secret key", {"secretKey": {"existingSecret": ""}}),
        ("an unknown database mode", {"database": {"mode": "mysql"}}),
        ("an unknown value", {"replicas": 2}),
        ("postgres without its Secret", {"database": {"mode": "postgres", "existingSecret": ""}}),
    ]:
        values = json.loads(json.dumps(base))
        for k, v in override.items():
            if isinstance(v, dict) and isinstance(values.get(k), dict):
                values[k].update(v)
            else:
                values[k] = v
        try:
            render(chart, values)
            fail(f"values with {what} rendered")
        except helm.HelmError:
            pass

    # The validator itself is not lenient: a broken manifest fails it.
    docs, _ = shapes.get("embedded", ([], None))
    if docs:
        bad = json.loads(json.dumps(by_kind(docs, "Service")[0]))
        bad["spec"]["ports"][0]["port"] = "fifty-three"
        bad["spec"]["bogus"] = True
        try:
            kubernetes_validate.validate(bad, K8S, strict=True)
            fail("kubernetes-validate accepted a broken Service")
        except Exception:
            pass

    if FAILURES:
        print("\n".join(FAILURES))
        return 1
    print(f"ok: {', '.join(sorted(shapes))} rendered and valid for Kubernetes {K8S}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
