"""Structural checks of the deployment files: the promises docs/operator-guide.md makes about them.
Run by deploy/validate.sh (which also runs the schema validators); exits 1 listing every failure."""

import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def load_all(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        failures.append(f"{path.relative_to(ROOT.parent)} does not parse: {e}")
        return []


# Every YAML file parses.
docs = {}
for path in sorted(ROOT.rglob("*.y*ml")):
    docs[path.relative_to(ROOT).as_posix()] = load_all(path)
check(len(docs) >= 8, "expected the compose file and the Kubernetes manifests")

# Kubernetes.
objects = {}
for name, items in docs.items():
    if name.startswith("k8s/") and name != "k8s/kustomization.yaml":
        for item in items:
            objects[(item.get("kind"), item["metadata"]["name"])] = item
            check(item["metadata"].get("namespace") or item["kind"] == "Namespace", f"{name}: no namespace")
for kind in ["Deployment", "Service", "ConfigMap", "Secret", "NetworkPolicy", "PodDisruptionBudget", "Ingress"]:
    check(any(k == kind for k, _ in objects), f"k8s: no {kind}")

deployment = objects.get(("Deployment", "locator"), {})
spec = deployment.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
check(spec.get("replicas", 1) >= 2, "Deployment: fewer than 2 replicas")
check(pod.get("securityContext", {}).get("runAsNonRoot") is True, "pod: runAsNonRoot is not true")
check(pod.get("automountServiceAccountToken") is False, "pod: the service account token is mounted")
containers = {c["name"]: c for c in pod.get("containers", []) + pod.get("initContainers", [])}
main = containers.get("locator", {})
for name, c in containers.items():
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{name}: root filesystem is writable")
    check(sc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot is not true")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: privilege escalation allowed")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities not all dropped")
    check({"cpu", "memory"} <= set(c.get("resources", {}).get("limits", {})), f"{name}: no cpu/memory limits")
probe = lambda kind: main.get(kind, {}).get("httpGet", {}).get("path")  # noqa: E731
check(probe("livenessProbe") == "/healthz", "locator: liveness probe is not /healthz")
check(probe("readinessProbe") == "/readyz", "locator: readiness probe is not /readyz")
key_volumes = [v for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == "locator-keys"]
check(len(key_volumes) == 1, "the locator-keys Secret is not mounted as a volume")
if key_volumes:
    paths = {i["path"] for i in key_volumes[0]["secret"].get("items", [])}
    check(paths == {"locator.key", "locator-audit.key"}, "both keys must come from the Secret as files")
    check(key_volumes[0]["secret"].get("defaultMode", 0o644) & 0o007 == 0, "key Secret is world-readable")
keys_dir = [v for v in pod.get("volumes", []) if v["name"] == "keys"]
check(keys_dir and keys_dir[0].get("emptyDir", {}).get("medium") == "Memory", "keys are not copied to memory")
check(
    any(m["mountPath"] == "/etc/locator/keys" and m.get("readOnly") for m in main.get("volumeMounts", [])),
    "locator: keys are not mounted read-only at /etc/locator/keys",
)
check(not any(e.get("name", "").endswith("KEY") and "value" in e for e in main.get("env", [])), "a key in env")
secret = objects.get(("Secret", "locator-keys"), {})
check(set(secret.get("data", {})) == {"locator.key", "locator-audit.key"}, "Secret template keys differ")
netpol = objects.get(("NetworkPolicy", "locator"), {}).get("spec", {})
check(set(netpol.get("policyTypes", [])) == {"Ingress", "Egress"}, "NetworkPolicy must restrict both directions")
pdb = objects.get(("PodDisruptionBudget", "locator"), {}).get("spec", {})
check(pdb.get("minAvailable", 0) >= 1, "PodDisruptionBudget keeps no replica")
selector = spec.get("selector", {}).get("matchLabels", {})
service = objects.get(("Service", "locator"), {}).get("spec", {})
check(service.get("selector") == selector, "Service does not select the Deployment's pods")
check(pdb.get("selector", {}).get("matchLabels") == selector, "PodDisruptionBudget does not select the pods")
ingress = objects.get(("Ingress", "locator"), {}).get("spec", {})
check(ingress.get("tls"), "Ingress has no TLS")
config_text = objects.get(("ConfigMap", "locator-config"), {}).get("data", {}).get("locator.toml", "")
check("postgres://" in config_text, "Kubernetes replicas must share PostgreSQL, not SQLite")
kustomization = (docs.get("k8s/kustomization.yaml") or [{}])[0]
listed = set(kustomization.get("resources", []))
on_disk = {n.removeprefix("k8s/") for n in docs if n.startswith("k8s/")} - {"kustomization.yaml"}
check(listed == on_disk - {"secret.example.yaml"}, f"kustomization resources {sorted(listed)} != files")

# Compose.
compose = (docs.get("compose.yaml") or [{}])[0]
services = compose.get("services", {})
check({"locator", "postgres"} <= set(services), "compose: needs locator and postgres")
locator = services.get("locator", {})
check(locator.get("read_only") is True, "compose: locator root filesystem is writable")
check(locator.get("cap_drop") == ["ALL"], "compose: capabilities not dropped")
check(str(locator.get("user", "")).split(":")[0] not in ("", "0", "root"), "compose: locator runs as root")
check(all("healthcheck" in s for s in services.values()), "compose: a service has no healthcheck")
check("/readyz" in " ".join(locator.get("healthcheck", {}).get("test", [])), "compose: healthcheck not /readyz")
check({"locator_key", "locator_audit_key"} <= set(locator.get("secrets", [])), "compose: keys not secrets")
env = locator.get("environment", {})
check(env.get("LOCATOR_KEY_FILE", "").startswith("/run/secrets/"), "compose: key file is not the secret")
check(not any(p.split(":")[0] not in ("127.0.0.1", "[::1]") for p in locator.get("ports", [])),
      "compose: port published beyond loopback (the TLS proxy is the way in)")

# systemd: the sandboxing the guide promises.
unit = (ROOT / "systemd/locator.service").read_text()
for directive in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/locator",
                  "PrivateTmp=yes", "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service",
                  "ProtectHome=yes", "RestrictAddressFamilies=", "KillSignal=SIGTERM"]:
    check(directive in unit, f"systemd: missing {directive.strip()}")
check(re.search(r"^User=(?!root)\w+", unit, re.M), "systemd: no dedicated user")

# Dockerfile: multi-stage, locked release build, non-root numeric user, no secrets baked in.
dockerfile = (ROOT / "Dockerfile").read_text()
check(len(re.findall(r"^FROM ", dockerfile, re.M)) >= 2, "Dockerfile: not multi-stage")
check("cargo build --release --locked" in dockerfile, "Dockerfile: not a locked release build")
users = re.findall(r"^USER (\S+)", dockerfile, re.M)
check(users and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile: the final stage runs as root")
check(not re.search(r"^(COPY|ADD) .*\.key", dockerfile, re.M), "Dockerfile: a key is copied into the image")

if failures:
    print("deployment checks FAILED:", *failures, sep="\n  ", file=sys.stderr)
    sys.exit(1)
print(f"  {len(docs)} YAML files parse; {len(objects)} Kubernetes objects and compose/systemd/Dockerfile checked")
