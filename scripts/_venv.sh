# Sourced by scripts/run, scripts/test and scripts/bench: make .venv and install the
# project (with EXTRAS) when pyproject.toml changed since the last install. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
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
