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
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip 2>&1 | grep -v 'file:///' >&2 || true
  spec="."
  [ -n "${EXTRAS:-}" ] && spec=".[$EXTRAS]"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec" 2>&1 \
    | grep -v -e 'file:///' -e 'BuildBackendWarning' >&2 || true
  .venv/bin/python -c 'import proxy, mitmproxy, aiohttp' || { echo "sargs: install failed" >&2; exit 1; }
  touch "$stamp"
fi
export PATH="$ROOT/.venv/bin:$PATH"
