#!/usr/bin/env bash
# Set up (scripts/bootstrap.sh) and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# the report's browser test: Debian's chromium and tesseract-ocr (EGOMEM_BROWSER=0 skips; without them it skips)
if [ "${EGOMEM_BROWSER:-1}" = 1 ] && ! { command -v chromium >/dev/null && command -v tesseract >/dev/null; }; then
  if [ "$(id -u)" = 0 ]; then
    echo "[test] apt-get install chromium tesseract-ocr"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium tesseract-ocr tesseract-ocr-eng >/dev/null || echo "[test] could not install them: the browser test skips" >&2
  else
    echo "[test] chromium / tesseract-ocr missing and not root: the browser test skips" >&2
  fi
fi
export HF_HUB_OFFLINE=1 NO_TORCH_COMPILE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# the PostgreSQL store's tests: a throw-away server, stopped and deleted at the end whatever the outcome
# (EGOMEM_PG=0 skips them; EGOMEM_PG_URL=... uses a server of yours)
if [ "${EGOMEM_PG:-1}" = 1 ] && [ -z "${EGOMEM_PG_URL:-}" ]; then
  pg_env=$(bash scripts/pg_throwaway.sh start) || { echo "[test] PostgreSQL is installed but did not start" >&2; exit 1; }
  eval "$pg_env"
  if [ -n "${EGOMEM_PG_DIR:-}" ]; then trap 'bash scripts/pg_throwaway.sh stop "$EGOMEM_PG_DIR"' EXIT; fi
fi
# lint first (pyproject.toml [tool.ruff]): a finding fails the run, as a failing test does
echo "[test] ruff check"
.venv/bin/ruff check egomem_ros test bench scripts launch
set +e
.venv/bin/python -m pytest -q -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
