#!/usr/bin/env bash
# Runs every test of the workspace. On first use it creates a Python venv with a pinned
# moto[server] (the AWS API emulator the immutable-aws tests start on loopback), outside the
# clone so later runs and other clones reuse it, and installs HAProxy (Debian's package) for
# the immutable-local tests, Prometheus (Debian's package) for the PrometheusCheck tests of
# immutable-core, Chromium with its WebDriver (Debian's chromium and chromium-driver, one
# version) for the browser tests driven through immutable-testkit's `browser` feature, and
# Docker (Debian's docker.io, dockerd 20.10) for the immutable-docker tests and
# immutable-testkit's `docker` feature, and PostgreSQL (Debian's postgresql) for the
# PostgreSQL journal's tests. With no Docker daemon answering on
# /var/run/docker.sock (and no DOCKER_HOST naming another), it starts dockerd in the
# background (there is no systemd to do it), logging to /var/log/immutable-dockerd.log, and
# leaves it running for later runs. These tests fail rather than skip without all of this.
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
  echo "test.sh: installing curl for the README walkthrough test of immutable-cli and to ask dockerd whether it runs" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y curl
fi

if ! command -v dockerd >/dev/null && [ ! -x /usr/sbin/dockerd ]; then
  echo "test.sh: installing docker.io (Debian's package) for the immutable-docker tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y docker.io
fi

# PostgreSQL for immutable-postgres and the CLI's --store postgres:// tests: each test binary
# starts a private cluster (initdb, pg_ctl from /usr/lib/postgresql/<version>/bin, which is not
# on the PATH, run as the package's `postgres` user when root) on a loopback port.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "test.sh: installing postgresql (Debian's package) for the PostgreSQL journal's tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi

# The private daemons of the two-host and TLS tests get a bridge of their own (iproute2's `ip`)
# and certificates made by openssl.
if [ ! -x /usr/sbin/ip ] || ! command -v openssl >/dev/null; then
  echo "test.sh: installing iproute2 and openssl for the private Docker daemons of the tests" >&2
  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y iproute2 openssl
fi

docker_answers() {
  curl -sf --max-time 2 --unix-socket /var/run/docker.sock http://localhost/_ping >/dev/null
}
if [ -z "${DOCKER_HOST:-}" ] && ! docker_answers; then
  dockerd_log=/var/log/immutable-dockerd.log
  echo "test.sh: starting dockerd in the background (log: $dockerd_log)" >&2
  # Its own session, so that it outlives this script and a Ctrl-C of the tests.
  setsid "$(command -v dockerd || echo /usr/sbin/dockerd)" --host unix:///var/run/docker.sock \
    >"$dockerd_log" 2>&1 </dev/null &
  deadline=$((SECONDS + 60))
  until docker_answers; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "test.sh: dockerd did not answer on /var/run/docker.sock within 60 s; its log ends:" >&2
      tail -n 30 "$dockerd_log" >&2
      exit 1
    fi
    sleep 0.5
  done
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
