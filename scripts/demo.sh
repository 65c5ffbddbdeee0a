#!/usr/bin/env bash
# The main job on the bundled demo: set up, build both demo connector versions, and run
# `live-tests debug read` on them side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
live-tests images demo
live-tests debug read \
  -c live-tests/source-demo:1.0.0 -c live-tests/source-demo:2.0.0 \
  --config-path demo/config.json --catalog-path demo/configured_catalog.json \
  --output-dir live_tests_debug_reports --run-id demo
