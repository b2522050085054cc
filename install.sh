#!/usr/bin/env bash
# Install the appliance into ./.venv (safe to run again, for instance after an update).
#   ./install.sh          the appliance itself
#   ./install.sh --dev    also what the tests need: Python test packages and,
#                         as root through apt, the system services the tests start
set -euo pipefail
cd "$(dirname "$0")"

DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) DEV=1 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

# System packages the test suite uses (services it starts itself, on 127.0.0.1).
#   slapd, ldap-utils: a private OpenLDAP server for the directory tests (no system daemon is started)
#   openssl: the test certificate authority for LDAPS and StartTLS
#   chromium: the browser the page tests drive through Playwright (never `playwright install`)
#   docker.io, debootstrap: the tests that build and run the real image (a private Docker daemon
#     that leaves the machine's network alone, on an offline Debian base image)
TEST_SYSTEM_PACKAGES=(slapd ldap-utils openssl chromium docker.io debootstrap)
MISSING=()

say() { printf '==> %s\n' "$*"; }

apt_install() {
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    MISSING+=("$@")
    return 0
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -q >/dev/null || true
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null || MISSING+=("$@")
}

find_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

PY=$(find_python) || {
  echo "install.sh: Python 3.11 or newer is needed (on Debian/Ubuntu: apt-get install python3 python3-venv)" >&2
  exit 1
}

if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  VENV_PACKAGE="$(basename "$PY")-venv"   # python3.11 -> python3.11-venv
  say "installing $VENV_PACKAGE"
  apt_install "$VENV_PACKAGE"
  "$PY" -c 'import venv, ensurepip' 2>/dev/null || {
    echo "install.sh: $PY cannot create virtual environments; install $VENV_PACKAGE (as root: apt-get install $VENV_PACKAGE)" >&2
    exit 1
  }
fi

if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "creating .venv with $("$PY" --version)"
  rm -rf .venv
  "$PY" -m venv .venv
fi

say "installing the appliance and its dependencies into .venv"
.venv/bin/python -m pip install --quiet --upgrade pip
if [ "$DEV" -eq 1 ]; then
  .venv/bin/python -m pip install --quiet -e ".[test]"
  if [ "${#TEST_SYSTEM_PACKAGES[@]}" -gt 0 ]; then
    NEEDED=()
    for package in "${TEST_SYSTEM_PACKAGES[@]}"; do
      dpkg -s "$package" >/dev/null 2>&1 || NEEDED+=("$package")
    done
    if [ "${#NEEDED[@]}" -gt 0 ]; then
      say "installing system packages for the tests: ${NEEDED[*]}"
      # slapd must not ask questions nor configure a system-wide directory
      command -v debconf-set-selections >/dev/null &&
        printf 'slapd slapd/no_configuration boolean true\n' | debconf-set-selections 2>/dev/null || true
      apt_install "${NEEDED[@]}"
    fi
  fi
else
  .venv/bin/python -m pip install --quiet --force-reinstall --no-deps . >/dev/null
  .venv/bin/python -m pip install --quiet .
fi

if [ "${#MISSING[@]}" -gt 0 ]; then
  echo "install.sh: could not install: ${MISSING[*]}" >&2
  echo "install.sh: run ./install.sh --dev as root on Debian/Ubuntu, or install them by hand" >&2
  exit 1
fi

say "done. Start it with: .venv/bin/appliance serve   (then open http://127.0.0.1:8000)"
[ "$DEV" -eq 1 ] && say "run the tests with: .venv/bin/pytest"
exit 0
