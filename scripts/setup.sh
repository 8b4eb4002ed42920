#!/usr/bin/env bash
# Install what Thresher needs to run its demo and its tests, from a fresh clone. Idempotent.
#
#  1. System packages (Debian/Ubuntu): povray (+ povray-includes), postgresql (server binaries), blender, chromium,
#     haproxy, slapd (OpenLDAP, for the LDAP login tests).
#     Only the missing ones are installed; apt is skipped entirely when all are present.
#  2. A virtualenv in .venv (Python >= 3.11) with Thresher installed editable, plus its test extras.
#     pip is skipped when pyproject.toml has not changed since the last successful install.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- system packages
have_postgres_server() {
    if command -v pg_config >/dev/null 2>&1; then
        local bindir
        bindir="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$bindir" && -x "$bindir/initdb" && -x "$bindir/pg_ctl" ]] && return 0
    fi
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null 2>&1 && return 0
    command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1
}

have_chromium() {
    command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 \
        || command -v google-chrome >/dev/null 2>&1
}

missing=()
command -v povray >/dev/null 2>&1 || missing+=(povray)
# Scenes (the tests' among them) #include colors.inc and friends: a Recommends that --no-install-recommends skips.
compgen -G '/usr/share/povray*/include/colors.inc' >/dev/null 2>&1 || missing+=(povray-includes)
have_postgres_server || missing+=(postgresql)
command -v blender >/dev/null 2>&1 || missing+=(blender)
have_chromium || missing+=(chromium)
# The several-servers test puts real server processes behind Debian's haproxy.
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || missing+=(haproxy)
# The LDAP login tests start their own OpenLDAP server (tests/support/slapd.py) from Debian's slapd.
command -v slapd >/dev/null 2>&1 || [[ -x /usr/sbin/slapd ]] || missing+=(slapd)

if ((${#missing[@]} == 0)); then
    say "system packages present (povray, postgresql, blender, chromium, haproxy, slapd)"
else
    say "missing system packages: ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    SUDO=()
    if [[ "$(id -u)" != 0 ]]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            SUDO=(sudo -n)
        else
            die "not root and no non-interactive sudo; install ${missing[*]} by hand"
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    "${SUDO[@]}" apt-get update -qq
    if [[ " ${missing[*]} " == *" slapd "* ]] && command -v debconf-set-selections >/dev/null 2>&1; then
        # No question, and no directory of the system's own: the tests write their own configuration.
        echo "slapd slapd/no_configuration boolean true" | "${SUDO[@]}" debconf-set-selections
    fi
    say "apt-get install ${missing[*]}"
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The Debian postgresql package starts a cluster on 5432; the tests run their own server and
    # do not need it, but it is harmless. Check the binaries really landed.
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
        have_postgres_server || die "postgresql installed but initdb/pg_ctl not found"
    fi
fi

# ---------------------------------------------------------------- python
find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [[ -n "$candidate" ]] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if [[ ! -x .venv/bin/python ]] || ! .venv/bin/python -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
    PY="$(find_python)" || die "Python >= 3.11 not found (set PYTHON=/path/to/python3.11)"
    say "creating .venv with $("$PY" --version 2>&1)"
    rm -rf .venv
    "$PY" -m venv .venv || die "python -m venv failed (on Debian: apt-get install python3-venv)"
fi

STAMP=.venv/.thresher-installed
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && .venv/bin/python -c 'import thresher' 2>/dev/null; then
    say "python environment up to date (.venv)"
else
    say "pip install -e '.[test]'"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
    # (Some mirrors make pip warn once per package about unusable index locations: drop that noise.)
    .venv/bin/python -m pip install -q -e '.[test]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    echo "$want" > "$STAMP"
fi
# An editable install leaves Thresher's own modules uncompiled, and where PYTHONDONTWRITEBYTECODE is
# set every server, agent and CLI process compiles them again (about 0.4 s of CPU each): compile them
# once here. Python checks each .pyc against its source, so an edited module is never run stale.
.venv/bin/python -m compileall -q src
say "ready"
