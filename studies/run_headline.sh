#!/usr/bin/env bash
# Llama-3-70B on 8 devices vs 8 x A100 / 8 x H100: runs both studies (about 2 minutes on 2 cores)
# and writes docs/results/llama3-70b-8dev.md. Pass --report-only to rewrite the report from storage.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/ador headline --update-docs "$@"
