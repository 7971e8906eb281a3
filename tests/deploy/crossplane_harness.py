#!/usr/bin/env python3
"""Run deploy/crossplane's PoolAllocation against a real pdm the way
Crossplane would, without a cluster:

- the XRD, the Composition, its function-patch-and-transform input and every
  Request it renders are validated against the CRD schemas of Crossplane,
  function-patch-and-transform and provider-http (tests/data/crossplane/,
  unknown fields refused as `kubectl --validate=strict` does);
- the Composition's patches are applied as function-patch-and-transform
  applies them (the patch and transform types it uses; anything else is an
  error here), XR → Request and Request status → XR status;
- the Request is reconciled as provider-http v1.0.14+ and crossplane-runtime
  reconcile it: OBSERVE decides existence (404 = gone), DEFAULT
  up-to-date check (the answer contains the UPDATE body), CREATE / UPDATE /
  REMOVE by mapping, jq templates (libjq), secret placeholders, the 30 s
  create grace and backoff on a simulated clock, one fresh connection per
  call.

Scenarios, each run twice over the same name: create and observe until
Ready, steady state (GETs only), move the load balancer, delete until the
finalizer goes, and 404 after; then the same with lost responses (the call
reached pdm, the provider saw a transport error) and duplicated calls.

    crossplane_harness.py REPO_ROOT API_BASE_URL TOKEN DNS_HOST DNS_PORT
"""

import copy
import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import jq
import jsonschema
import yaml

ROOT = Path(sys.argv[1])
BASE = sys.argv[2].rstrip("/")
TOKEN = sys.argv[3]
DNS = (sys.argv[4], sys.argv[5])
SECRETS = {("pdm-api-token", "tenant-acme", "token"): TOKEN}
FAILURES = []
CALLS = []


def fail(msg):
    FAILURES.append(msg)
    print("FAIL:", msg, flush=True)


# ---------------------------------------------------------------- schemas
def strict(schema):
    """CRD structural schema → JSON Schema that refuses unknown fields."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(x) for x in schema]
    return schema


def schema(name):
    s = json.loads((ROOT / "tests/data/crossplane" / name).read_text())
    s.pop("$comment", None)
    return strict(s)


def validate(doc, schema_name, what):
    errors = sorted(
        jsonschema.Draft7Validator(schema(schema_name)).iter_errors(doc), key=str
    )
    for e in errors:
        fail(f"{what}: {'/'.join(map(str, e.path))}: {e.message}")
    return not errors


# --------------------------------------------------- patch-and-transform
def get_path(obj, path):
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(obj, list):
            idx = int(part)
            if idx >= len(obj):
                return None
            obj = obj[idx]
        elif isinstance(obj, dict):
            if part not in obj:
                return None
            obj = obj[part]
        else:
            return None
    return obj


def set_path(obj, path, value):
    parts = re.findall(r"[^.\[\]]+", path)
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt = None if last else ([] if parts[i + 1].isdigit() else {})
        if isinstance(obj, list):
            idx = int(part)
            while len(obj) <= idx:
                obj.append(None)
            if last:
                obj[idx] = value
            else:
                if obj[idx] is None:
                    obj[idx] = nxt
                obj = obj[idx]
        else:
            if last:
                obj[part] = value
            else:
                if part not in obj or obj[part] is None:
                    obj[part] = nxt
                obj = obj[part]


class Fatal(Exception):
    """A patch error function-patch-and-transform treats as fatal."""


def go_json(v):
    """Go's json.Marshal: sorted keys, compact, <>& escaped."""
    s = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def transform(value, t):
    if t["type"] == "string":
        st = t["string"]
        kind = st["type"]
        if kind == "Convert" and st["convert"] == "ToJson":
            return go_json(value)
        if kind == "Format":
            return st["fmt"].replace("%s", str(value), 1)
        if kind == "Regexp":
            m = re.search(st["regexp"]["match"], str(value))
            if not m:
                raise Fatal(f"regexp {st['regexp']['match']!r} matched nothing")
            return m.group(st["regexp"].get("group", 0))
        raise ValueError(f"harness: unsupported string transform {kind}")
    if t["type"] == "convert":
        c = t["convert"]
        if c.get("format") == "json" and c["toType"] in ("array", "object"):
            out = json.loads(value)
            want = list if c["toType"] == "array" else dict
            if not isinstance(out, want):
                raise Fatal(f"not a JSON {c['toType']}: {value!r}")
            return out
        if c["toType"] == "int64":
            try:
                return int(value)
            except ValueError as e:
                raise Fatal(str(e)) from e
        raise ValueError(f"harness: unsupported convert {c}")
    raise ValueError(f"harness: unsupported transform {t['type']}")


def apply(patch, src, dst):
    value = get_path(src, patch["fromFieldPath"])
    if value is None:
        return  # a missing fromFieldPath skips the patch
    for t in patch.get("transforms", []):
        value = transform(value, t)
    set_path(dst, patch["toFieldPath"], value)


# ------------------------------------------------------- provider-http
DEFAULT_METHOD = {"CREATE": "POST", "OBSERVE": "GET", "UPDATE": "PUT", "REMOVE": "DELETE"}


class Lost(Exception):
    """The call reached pdm but its answer did not reach the provider."""


class Transport:
    """One fresh connection per call; `lose` drops answers of chosen calls."""

    def __init__(self):
        self.lose = set()  # (method, n-th call of that method)
        self.dup = set()  # calls sent twice (a retry on the wire); the second answer counts
        self.counts = {}

    def send(self, method, url, body, headers):
        n = self.counts.get(method, 0) + 1
        self.counts[method] = n
        if (method, n) in self.dup:
            self.dup.discard((method, n))
            self.counts[method] = n - 1
            first = self.send(method, url, body, headers)
            print(f"  duplicated {method}: first answer {first['statusCode']}", flush=True)
            self.counts[method] = n - 1
        data = body.encode() if body else None
        req = urllib.request.Request(url, data=data, method=method)
        for k, vs in headers.items():
            for v in vs:
                req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                code, text, hdrs = r.status, r.read().decode(), dict(r.headers)
        except urllib.error.HTTPError as e:
            code, text, hdrs = e.code, e.read().decode(), dict(e.headers)
        CALLS.append((method, code))
        if (method, n) in self.lose:
            raise Lost(f"{method} #{n}: answer {code} lost")
        return {"statusCode": code, "body": text, "headers": hdrs}


def parse_json_object_strings(v):
    if isinstance(v, dict):
        return {k: parse_json_object_strings(x) for k, x in v.items()}
    if isinstance(v, list):
        return [parse_json_object_strings(x) for x in v]
    if isinstance(v, str):
        try:
            o = json.loads(v)
            if isinstance(o, dict):
                return parse_json_object_strings(o)
        except ValueError:
            pass
    return v


def fill_secrets(text):
    def sub(m):
        return SECRETS[(m.group(1), m.group(2), m.group(3))]

    return re.sub(r"\{\{\s*([^:\s]+):([^:\s]+):([^\s}]+)\s*\}\}", sub, text)


class Request:
    """A provider-http Request and its controller's state."""

    def __init__(self, manifest, transport):
        self.m = manifest
        self.t = transport
        self.status = {"response": {"statusCode": 0, "body": "", "headers": None}, "failed": 0}
        self.cache = None
        self.req_method = ""
        self.ann = {}
        self.deleting = False
        self.ready = False
        self.backoff_n = 0

    @property
    def fp(self):
        return self.m["spec"]["forProvider"]

    def mapping(self, action):
        ms = self.fp["mappings"]
        m = next((x for x in ms if x.get("action") == action), None) or next(
            (x for x in ms if x.get("method") == DEFAULT_METHOD[action]), None
        )
        if m is None:
            return None
        return {**m, "method": m.get("method") or DEFAULT_METHOD[action]}

    def is_error(self, code):
        return 400 <= code < 600 and code not in self.fp.get("allowedStatusCodes", [])

    def render(self, m, resp):
        ctx = parse_json_object_strings(copy.deepcopy(self.fp))
        if resp:
            r = {k: v for k, v in resp.items() if v not in (None, "", 0)}
            ctx["response"] = parse_json_object_strings(r)
        url = jq.compile(m["url"]).input_value(ctx).first()
        if not isinstance(url, str) or not re.match(r"^https?://[^/]+", url):
            raise ValueError(f"url renders to {url!r}")
        body = ""
        if m.get("body"):
            out = jq.compile(" ".join(m["body"].split())).input_value(ctx).first()
            if isinstance(out, dict):
                body = go_json(out)
            elif isinstance(out, str):
                body = out
            else:
                raise ValueError(f"body renders to {out!r}")
        headers = {}
        for k, vs in (m.get("headers") if m.get("headers") is not None else self.fp.get("headers") or {}).items():
            vals = []
            for v in vs:
                try:
                    o = jq.compile(v).input_value(ctx).first()
                    if not isinstance(o, str):
                        raise ValueError("not a string")
                    vals.append(o)
                except Exception:
                    vals.append(v)
            headers[k] = vals
        return {"method": m["method"], "url": url, "body": body, "headers": headers}

    def render_valid(self, m):
        try:
            r = self.render(m, self.status["response"])
        except Exception:
            r = None
        if r and "null" not in json.dumps(r):
            return r
        return self.render(m, self.cache)

    def send(self, r):
        body = fill_secrets(r["body"])
        headers = {k: [fill_secrets(v) for v in vs] for k, vs in r["headers"].items()}
        return self.t.send(r["method"], r["url"], body, headers)

    def record(self, r, resp, synced=False):
        old = self.status["response"]
        self.status["response"] = {
            "statusCode": resp["statusCode"] or old["statusCode"],
            "body": resp["body"] or old["body"],
            "headers": resp["headers"] or old["headers"],
        }
        self.req_method = r["method"]
        code = resp["statusCode"]
        if synced:
            self.status["failed"] = 0
        if self.is_error(code):
            self.status["failed"] += 1
            return
        if 200 <= code < 300 and r["method"] != "GET":
            self.status["failed"] = 0
        if 200 <= code < 300:
            try:
                for x in self.fp["mappings"]:
                    self.render(x, resp)
                self.cache = resp
            except Exception:
                pass

    def up_to_date(self, resp):
        u = self.mapping("UPDATE")
        if not u:
            return True
        want = self.render_valid(u)["body"]
        body = resp["body"]
        ok = 200 <= resp["statusCode"] < 300
        try:
            b, w = json.loads(body), json.loads(want)
        except ValueError:
            b = w = None
        if isinstance(b, dict) and isinstance(w, dict):
            return ok and all(go_json(b.get(k)) == go_json(v) for k, v in w.items())
        if isinstance(b, dict) or isinstance(w, dict):
            raise ValueError("one of the bodies is not JSON")
        return want in body and ok

    def observe(self):
        m = self.mapping("OBSERVE")
        not_created = self.status["response"]["statusCode"] == 0 or (
            self.req_method == "POST" and self.is_error(self.status["response"]["statusCode"])
        )
        try:
            r = self.render_valid(m)
        except Exception:
            if not_created:
                return False, False
            raise
        resp = self.send(r)  # Lost propagates: an Observe error
        if not_created and not 200 <= resp["statusCode"] < 300:
            return False, False
        if resp["statusCode"] == 404:
            return False, False
        synced = self.up_to_date(resp)
        self.ready = True
        self.record(r, resp, synced)
        return True, synced

    def deploy(self, action):
        m = self.mapping(action)
        if not m:
            return
        r = self.render_valid(m)
        resp = self.send(r)  # Lost: a transport error, the call failed
        self.record(r, resp)

    def backoff(self):
        self.backoff_n += 1
        return min(2 ** (self.backoff_n - 1), 60)

    def reconcile(self, now):
        """One reconcile; the seconds until the next, or 'FINALIZED'."""
        a = self.ann
        if a.get("pending") and a["pending"] > max(a.get("succeeded", 0), a.get("failed", 0)):
            return "STUCK"
        try:
            exists, synced = self.observe()
        except Exception as e:
            print(f"  observe error: {e}", flush=True)
            return self.backoff()
        if not exists and a.get("succeeded") and now - a["succeeded"] < 30:
            return self.backoff()
        if self.deleting:
            if not exists:
                return "FINALIZED"
            try:
                self.deploy("REMOVE")
            except Exception as e:
                print(f"  remove error: {e}", flush=True)
            return self.backoff()
        if not exists:
            a["pending"] = now
            try:
                self.deploy("CREATE")
            except Exception as e:
                print(f"  create error: {e}", flush=True)
                a["failed"] = now + 0.001
                return self.backoff()
            a["succeeded"] = now + 0.001
            return 0
        if not synced:
            try:
                self.deploy("UPDATE")
            except Exception as e:
                print(f"  update error: {e}", flush=True)
                return self.backoff()
        self.backoff_n = 0
        return 60


# ------------------------------------------------------------ the XR
COMPOSITION = yaml.safe_load((ROOT / "deploy/crossplane/composition.yaml").read_text())
XRD = yaml.safe_load((ROOT / "deploy/crossplane/xrd.yaml").read_text())
EXAMPLE = yaml.safe_load((ROOT / "deploy/crossplane/example.yaml").read_text())
RESOURCE = COMPOSITION["spec"]["pipeline"][0]["input"]["resources"][0]


def compose(xr):
    """XR → the Request function-patch-and-transform renders."""
    req = copy.deepcopy(RESOURCE["base"])
    req["metadata"] = {"name": f"{xr['metadata']['name']}-allocation", "namespace": xr["metadata"]["namespace"]}
    for p in RESOURCE["patches"]:
        if p["type"] == "FromCompositeFieldPath":
            apply(p, xr, req)
        elif p["type"] != "ToCompositeFieldPath":
            raise ValueError(f"harness: unsupported patch type {p['type']}")
    # The install-specific value an operator edits in the Composition.
    req["spec"]["forProvider"]["payload"]["baseUrl"] = BASE
    validate(req, "http-m-request-v1alpha2.schema.json", "the rendered Request")
    return req


def to_xr_status(xr, request):
    """Request status → XR status; a fatal patch leaves the status as it was."""
    src = {"status": {"response": request.status["response"]}}
    new = copy.deepcopy(xr)
    try:
        for p in RESOURCE["patches"]:
            if p["type"] == "ToCompositeFieldPath":
                apply(p, src, new)
    except Fatal as e:
        xr["synced"] = f"False: {e}"
        return
    xr["status"] = new.get("status", {})
    xr["synced"] = "True"


def xr_ready(request):
    checks = RESOURCE["readinessChecks"]
    for c in checks:
        if c["type"] == "MatchCondition":
            if not request.ready:
                return False
        elif c["type"] == "MatchInteger":
            if get_path({"status": request.status}, c["fieldPath"]) != c["matchInteger"]:
                return False
        else:
            raise ValueError(f"harness: unsupported readiness check {c['type']}")
    return True


def dig(name, qtype="A"):
    out = subprocess.run(
        ["dig", "+short", "+norecurse", "+time=2", "+tries=2", f"@{DNS[0]}", "-p", DNS[1], name, qtype],
        capture_output=True, text=True, timeout=20,
    )
    return sorted(out.stdout.split())


def dig_rcode(name):
    out = subprocess.run(
        ["dig", "+norecurse", "+time=2", f"@{DNS[0]}", "-p", DNS[1], name, "A"],
        capture_output=True, text=True, timeout=20,
    ).stdout
    m = re.search(r"status: (\w+)", out)
    return m.group(1) if m else out


class Clock:
    def __init__(self):
        self.now = 1000.0


def run(request, xr, clock, until, limit=40):
    """Reconcile until `until()` holds; returns the reconciles it took."""
    for i in range(limit):
        delay = request.reconcile(clock.now)
        to_xr_status(xr, request)
        if delay == "FINALIZED":
            return ("FINALIZED", i + 1)
        if delay == "STUCK":
            fail("the Request is stuck (external-create-pending)")
            return ("STUCK", i + 1)
        if until():
            return ("OK", i + 1)
        clock.now += delay
    fail(f"did not converge in {limit} reconciles; last answer {request.status['response']}")
    return ("LIMIT", limit)


def scenario(label, lose=(), dup=()):
    print(f"== {label}", flush=True)
    transport = Transport()
    transport.lose = set(lose)
    transport.dup = set(dup)
    clock = Clock()
    xr = copy.deepcopy(EXAMPLE)
    request = Request(compose(xr), transport)
    sub = xr["spec"]["subdomain"]
    fqdn = f"{sub}.{xr['spec']['pool']}"

    # Create: observe until Ready.
    start = len(CALLS)
    outcome, n = run(request, xr, clock, lambda: xr_ready(request))
    print(f"  ready after {n} reconciles: {CALLS[start:]}", flush=True)
    st = xr.get("status", {})
    if st.get("fqdn") != fqdn or st.get("state") != "active":
        fail(f"{label}: XR status after create {st}")
    if not st.get("nameservers") or not st.get("ds") or not isinstance(st.get("servedSerial"), int):
        fail(f"{label}: XR status lacks nameservers/ds/servedSerial: {st}")
    if dig(f"www.{fqdn}") != [xr["spec"]["loadBalancerIP"]]:
        fail(f"{label}: www.{fqdn} A {dig(f'www.{fqdn}')}")
    if dig(f"console.{fqdn}") != [xr["spec"]["consoleLoadBalancerIP"]]:
        fail(f"{label}: console.{fqdn} A {dig(f'console.{fqdn}')}")

    # Steady state: a poll is one GET, never a PUT.
    start = len(CALLS)
    for _ in range(3):
        clock.now += request.reconcile(clock.now) or 0
        to_xr_status(xr, request)
    if [m for m, _ in CALLS[start:]] != ["GET"] * 3:
        fail(f"{label}: steady state sent {CALLS[start:]} (want 3 GETs)")

    # Move the load balancer: the XR changes, the Request is composed again.
    serial = xr["status"]["servedSerial"]
    ds = xr["status"]["ds"]
    xr["spec"]["loadBalancerIP"] = "203.0.113.20"
    request.m = compose(xr)
    start = len(CALLS)
    run(request, xr, clock, lambda: xr.get("status", {}).get("servedSerial", 0) > serial
        and request.up_to_date(request.status["response"]))
    print(f"  moved: {CALLS[start:]}", flush=True)
    if ("PUT", 200) not in CALLS[start:]:
        fail(f"{label}: no UPDATE PUT after the spec changed: {CALLS[start:]}")
    if dig(f"www.{fqdn}") != ["203.0.113.20"]:
        fail(f"{label}: after the move www.{fqdn} A {dig(f'www.{fqdn}')}")
    if xr["status"]["ds"] != ds:
        fail(f"{label}: the DS changed on a move")

    # Delete: REMOVE until OBSERVE answers 404, then the finalizer goes.
    request.deleting = True
    start = len(CALLS)
    outcome, n = run(request, xr, clock, lambda: False)
    print(f"  deleted ({outcome} after {n}): {CALLS[start:]}", flush=True)
    if outcome != "FINALIZED":
        fail(f"{label}: deletion ended {outcome}")
    if not any(m == "DELETE" for m, _ in CALLS[start:]):
        fail(f"{label}: no DELETE sent")
    if dig_rcode(f"www.{fqdn}") != "NXDOMAIN":
        fail(f"{label}: www.{fqdn} still answers after delete: {dig_rcode(f'www.{fqdn}')}")
    # And a GET now is 404.
    get = Transport().send("GET", f"{BASE}/pool/{xr['spec']['pool']}/allocations/{sub}", "",
                           {"Authorization": [f"Bearer {TOKEN}"]})
    if get["statusCode"] != 404:
        fail(f"{label}: GET after delete answered {get['statusCode']}")


def xr_doc(xr):
    # Crossplane adds metadata (and spec.crossplane) to the XRD's schema itself.
    return {k: v for k, v in xr.items() if k in ("spec", "status")}


def check_definitions():
    validate(XRD, "xrd-v2.schema.json", "xrd.yaml")
    validate(COMPOSITION, "composition-v1.schema.json", "composition.yaml")
    validate(COMPOSITION["spec"]["pipeline"][0]["input"], "pt-resources-v1beta1.schema.json",
             "the function-patch-and-transform input")
    spec = XRD["spec"]
    # What Crossplane's CEL rules on v2 XRDs require (not checked by JSON Schema).
    if XRD["metadata"]["name"] != f"{spec['names']['plural']}.{spec['group']}":
        fail("the XRD's name must be <plural>.<group>")
    if spec.get("scope", "Namespaced") != "Namespaced" or "claimNames" in spec or "connectionSecretKeys" in spec:
        fail("a v2 XRD here is namespaced, without claimNames or connectionSecretKeys")
    if COMPOSITION["spec"]["mode"] != "Pipeline":
        fail("the Composition's mode must be Pipeline")
    ref = COMPOSITION["spec"]["compositeTypeRef"]
    version = spec["versions"][0]
    if ref != {"apiVersion": f"{spec['group']}/{version['name']}", "kind": spec["names"]["kind"]}:
        fail(f"compositeTypeRef {ref} does not name the XRD's type")
    # The example XR against the XRD's own schema.
    xr_schema = strict(version["schema"]["openAPIV3Schema"])
    for e in jsonschema.Draft7Validator(xr_schema).iter_errors(xr_doc(EXAMPLE)):
        fail(f"example.yaml: {'/'.join(map(str, e.path))}: {e.message}")
    bad = copy.deepcopy(xr_doc(EXAMPLE))
    bad["spec"]["subdomain"] = "Not_A_Label"
    if jsonschema.Draft7Validator(xr_schema).is_valid(bad):
        fail("the XRD schema accepted a bad subdomain")
    status_fields = set(version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"])
    if status_fields != {"fqdn", "state", "nameservers", "ds", "servedSerial"}:
        fail(f"XRD status fields {sorted(status_fields)}")
    # The validation is not blind: a typo in the Composition is refused.
    typo = copy.deepcopy(COMPOSITION)
    typo["spec"]["pipline"] = typo["spec"].pop("pipeline")
    if jsonschema.Draft7Validator(schema("composition-v1.schema.json")).is_valid(typo):
        fail("the Composition schema accepted a typo")


def main():
    check_definitions()
    for round_ in (1, 2):
        scenario(f"round {round_}")
    # Under retries: the first PUT's and the first DELETE's answers are lost
    # after pdm acted; OBSERVE and the next calls must still converge.
    for round_ in (1, 2):
        scenario(f"lost answers, round {round_}", lose={("PUT", 1), ("DELETE", 1), ("GET", 2)})
    # Calls repeated on the wire: the second PUT and DELETE find their work done.
    scenario("duplicated calls", dup={("PUT", 1), ("DELETE", 1)})
    if FAILURES:
        print(f"{len(FAILURES)} failure(s)")
        return 1
    print(f"ok: {len(CALLS)} calls; {sorted(set(CALLS))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
