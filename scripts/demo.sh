#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the main job on the offline defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 NO_TORCH_COMPILE=1
exec .venv/bin/egomem demo "$@"
