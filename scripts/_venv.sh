# Sourced by scripts/run, scripts/test and scripts/bench: make .venv and install the
# project (with EXTRAS) when pyproject.toml changed since the last install. Idempotent.
# pyspnego[kerberos] (Negotiate sign-on) builds gssapi and krb5 from source: where
# krb5-config or a C compiler is missing, Debian's libkrb5-dev and gcc are installed
# first (callers that need more Debian packages set SARGS_APT before sourcing this).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# sargs_apt PKG…: install Debian packages (as root, else with sudo).
sargs_apt() {
  [ $# -gt 0 ] || return 0
  echo "sargs: installing $* (Debian packages)" >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}
apt_need=(${SARGS_APT:-})
command -v krb5-config >/dev/null 2>&1 || apt_need+=(libkrb5-dev)
command -v cc >/dev/null 2>&1 || apt_need+=(gcc)
sargs_apt "${apt_need[@]}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "sargs: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=".venv/.sargs-installed${EXTRAS:+-$EXTRAS}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "sargs: installing into .venv (pyproject.toml changed)" >&2
  spec="."
  [ -n "${EXTRAS:-}" ] && spec=".[$EXTRAS]"
  log=".venv/install.log"
  if ! { .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip &&
         .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"; } >"$log" 2>&1 ||
     ! .venv/bin/python -c 'import proxy, mitmproxy, aiohttp' 2>>"$log"; then
    grep -v 'file:///' "$log" >&2
    echo "sargs: install failed (full log: $log)" >&2
    exit 1
  fi
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
