#!/usr/bin/env bash
# Installs everything the benchmark needs on a fresh Debian machine: the toolchains (apt) and a
# virtual environment .venv with the pinned Python packages. Safe to rerun: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v cmake >/dev/null || need+=(cmake)
command -v g++ >/dev/null || need+=(g++)
command -v make >/dev/null || need+=(make)
[ -f /usr/include/nlohmann/json.hpp ] || need+=(nlohmann-json3-dev)
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || need+=(maven)
command -v valgrind >/dev/null || need+=(valgrind)  # instructions per call (invoke all --instructions)
# apt-get, waiting while another apt or dpkg run (a boot-time update, a second set-up) holds its lock:
# DPkg::Lock::Timeout covers dpkg's lock, but `apt-get update` fails at once on the lists' lock.
apt_get() {
  local err waited=
  for _ in $(seq 120); do
    if err=$(DEBIAN_FRONTEND=noninteractive apt-get -qq -o DPkg::Lock::Timeout=600 "$@" 2>&1 >/dev/null); then
      return 0
    fi
    case $err in
      *"Could not get lock"*)
        [ -n "$waited" ] || echo "setup: another apt-get holds its lock; waiting (up to 10 minutes)" >&2
        waited=1; sleep 5 ;;
      *) echo "$err" >&2; return 1 ;;
    esac
  done
  echo "$err" >&2
  return 1
}

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} (apt-get)"
    apt_get update
    apt_get install -y "${need[@]}"
  else
    echo "setup: missing ${need[*]}: install them (apt-get install ${need[*]}); their runners will be skipped" >&2
  fi
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  # --retries 0: where the public index is unreachable, fail over to the local wheels at once.
  .venv/bin/pip install --quiet --retries 0 --timeout 15 -r requirements.txt
  echo "$want" >"$stamp"
fi
echo "setup: ready (.venv/bin/invoke --list shows the tasks)"
