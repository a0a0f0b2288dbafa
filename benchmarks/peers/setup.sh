#!/usr/bin/env bash
# Build the benchmark-only venv for the peer comparison (benchmarks/peers/.venv).
#
# frontrun and interleave-test need Python >= 3.12/3.13, newer than the
# project's own floor (3.11), so they live in a separate venv and are NOT
# dependencies of pagewalk: the project's .venv and pyproject.toml are left
# untouched.  Idempotent: re-running only installs what is missing.
# Exits 0 with a message (and without a venv) when no suitable Python exists.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

# Pinned to the versions the comparison was written against (anchors §A, §E).
peers=("frontrun==0.7.0" "interleave-test==0.1.0")

find_python() {
    local cand
    for cand in "${PEERS_PYTHON:-}" \
                python3.13 \
                "$HOME/.pyenv/versions/3.13.0/bin/python3.13" \
                python3.12 \
                "$HOME/.pyenv/versions/3.12.1/bin/python3.12"; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 \
           && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
            command -v "$cand"
            return 0
        fi
    done
    return 1
}

if [ -x "$venv/bin/python" ] \
   && "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
    py="$venv/bin/python"
else
    if ! base="$(find_python)"; then
        echo "peers/setup.sh: no Python 3.13 or 3.12 found (frontrun and interleave-test" \
             "need >= 3.12); set PEERS_PYTHON=/path/to/python3.13 to choose one." \
             "Skipping the peer benchmark." >&2
        exit 0
    fi
    rm -rf "$venv"
    "$base" -m venv "$venv"
    py="$venv/bin/python"
fi

if "$py" -c 'import frontrun, interleave_test, pagewalk' 2>/dev/null \
   && [ -x "$venv/bin/frontrun" ]; then
    echo "peers venv ready: $venv ($("$py" --version))"
    exit 0
fi

"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet "${peers[@]}"
"$py" -m pip install --quiet -e "$repo"
echo "peers venv ready: $venv ($("$py" --version))"
