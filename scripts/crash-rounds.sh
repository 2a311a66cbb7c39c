#!/usr/bin/env bash
# Runs the crash-durability test for many rounds (default 25): a real server is SIGKILLed mid-storm of
# concurrent submissions, restarted, and checked for every acknowledged job, none twice.
set -euo pipefail
cd "$(dirname "$0")/.."
WANKA_CRASH_ROUNDS=${1:-25} cargo test --release -p wanka --test crash -- --nocapture 2>&1 \
  | grep -E "^round|rounds,|test result|panicked|missing|twice"
