#!/usr/bin/env bash
# Set up everything egomem_ros needs on a fresh Debian 12 / Ubuntu machine: system packages,
# a virtual environment in .venv, and the package with its offline default backends.
# Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EXTRAS=${EGOMEM_EXTRAS:-all}

apt_missing=()
command -v espeak-ng >/dev/null || apt_missing+=(espeak-ng)          # TTS voices for demo/streams
command -v g++ >/dev/null || apt_missing+=(g++)                      # hnswlib, webrtcvad build from source
command -v cmake >/dev/null || apt_missing+=(cmake)                  # egomem_msgs (ament_cmake + rosidl)
[ -f /usr/share/wordnet/index.noun ] || apt_missing+=(wordnet-base)  # Level-2: relation words outside the lexicon
"$PY" -c "import ensurepip" 2>/dev/null || apt_missing+=(python3-venv)
[ -f "$("$PY" -c 'import sysconfig;print(sysconfig.get_paths()["include"])')/Python.h" ] || apt_missing+=(python3-dev)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[bootstrap] apt-get install ${apt_missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    echo "[bootstrap] missing system packages: ${apt_missing[*]} (run: sudo apt-get install ${apt_missing[*]})" >&2
    exit 1
  fi
fi

# pip on some machines warns about unreachable local index mirrors on every package: keep the log readable
pip_q() { .venv/bin/pip "$@" 2>&1 | { grep -v "^WARNING: Location 'file:" || true; }; return "${PIPESTATUS[0]}"; }

[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.egomem-install-stamp
MOSHI_VERSION=0.2.13
want=$(cat setup.py requirements/constraints.txt scripts/bootstrap.sh | sha256sum | cut -c1-16)-$EXTRAS
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing egomem_ros[$EXTRAS] into .venv (first time: a few minutes)"
  export PIP_DISABLE_PIP_VERSION_CHECK=1
  # torch first, pinned to the CPU build, so nothing later pulls a CUDA wheel.
  pip_q install -q -c requirements/constraints.txt "torch==2.13.0" "setuptools<81" wheel
  pip_q install -q -c requirements/constraints.txt -e ".[$EXTRAS]"
  # moshi (the dialog runtime's model code) pins torch<2.10; its code runs on this torch, so no deps.
  pip_q install -q --no-deps "moshi==$MOSHI_VERSION"
  echo "$want" > "$stamp"
fi
[ "${EGOMEM_ROS:-1}" = 0 ] || bash scripts/bootstrap_ros.sh   # ROS 2 Kilted wheels + interface packages
echo "[bootstrap] ready: $(.venv/bin/python -c 'import egomem_ros; print("egomem_ros", egomem_ros.__version__)')"
