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
set +e
.venv/bin/python -m pytest -q -ra "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
