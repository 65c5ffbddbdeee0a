#!/usr/bin/env bash
# The demo in HTTP mode: start the demo's fake shop API, then run the regression suite on both demo
# versions through the proxy, which sends https://api.demo-shop.example to the fake API (map_remote).
# Extra arguments go to `live-tests regression`, e.g. --session-dir DIR, --http-fault status=503:every=3,
# or pytest's own after `--` (-- -k http).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${LIVE_TESTS_SKIP_SETUP:-}" ] || bash scripts/setup.sh
live-tests images demo >/dev/null
fake_api=$(docker run -d --rm -P --label live-tests.role=demo-fake-api live-tests/fake-api:latest)
trap 'docker rm -f "$fake_api" >/dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do docker logs "$fake_api" 2>&1 | grep -q listening && break; sleep 0.1; done
port=$(docker port "$fake_api" 8080/tcp | head -1 | sed 's/.*://')
echo "fake shop API on host port $port (container ${fake_api:0:12})"
status=0
live-tests regression --connector-image live-tests/source-demo --control-version 1.0.0 --target-version 2.0.0 \
  --config-path demo/config_http.json --catalog-path demo/configured_catalog.json --state-path demo/state.json \
  --proxy-option "map_remote=|https://api\.demo-shop\.example|http://host.docker.internal:$port" \
  "$@" || status=$?
exit "$status"
