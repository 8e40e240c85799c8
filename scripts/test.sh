#!/usr/bin/env bash
# Runs every test of the workspace. On first use it creates a Python venv with a pinned
# moto[server] (the AWS API emulator the immutable-aws tests start on loopback), outside the
# clone so later runs and other clones reuse it, and installs HAProxy (Debian's package) for
# the immutable-local tests, Prometheus (Debian's package) for the PrometheusCheck tests of
# immutable-core, and Chromium with its WebDriver (Debian's chromium and chromium-driver, one
# version) for the browser tests driven through immutable-testkit's `browser` feature; these
# tests fail rather than skip without them.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v haproxy >/dev/null && [ ! -x /usr/sbin/haproxy ]; then
  echo "test.sh: installing haproxy (Debian's package) for the immutable-local tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y haproxy
fi

if ! command -v prometheus >/dev/null && [ ! -x /usr/bin/prometheus ]; then
  echo "test.sh: installing prometheus (Debian's package) for the PrometheusCheck tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y prometheus
fi

if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
  echo "test.sh: installing chromium and chromium-driver (Debian's packages) for the browser tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver
fi

if ! command -v curl >/dev/null; then
  echo "test.sh: installing curl for the README walkthrough test of immutable-cli" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y curl
fi

MOTO_VERSION=5.2.5
venv="${IMMUTABLE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/immutable/venv-moto-$MOTO_VERSION}"
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "test.sh: creating $venv with moto[server]==$MOTO_VERSION" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
fi
export IMMUTABLE_MOTO_SERVER="$venv/bin/moto_server"

# --show-output prints what the fault-injection and crash tests report (points covered).
cargo test --workspace --all-features --locked "$@" -- --show-output
