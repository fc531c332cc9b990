#!/usr/bin/env bash
# Installs the Debian packages Rabta needs to build, run and test. Idempotent: it asks apt
# only for what is missing, and runs `apt-get update` only when something is. A package that
# cannot be installed stops here with its name, not later as a strange compile error.
set -euo pipefail

# package -> what it gives us (one line each; keep sorted by purpose)
PACKAGES=(
  build-essential   # cc, make
  cmake             # build system
  pkg-config        # finding the libraries below
  libevent-dev      # event loop, HTTP, timers (and libevent_openssl: https:// webhooks)
  libssl-dev        # TLS of outgoing https:// requests
  openssl           # the webhook TLS test makes its certificates with the CLI
  libpq-dev         # PostgreSQL client (async)
  libyaml-dev       # configuration
  liblua5.4-dev     # rules
  libjansson-dev    # JSON
  libsodium-dev     # argon2id, random, HMAC
  libcurl4-openssl-dev # SMTP for the email_smtp plugin (multi interface on the loop)
  tzdata            # time zones of business calendars (core/config/tz.c reads /usr/share/zoneinfo)
  libcmocka-dev     # unit tests
  postgresql        # embedded private cluster (initdb, postgres, pg_ctl, pgbench)
  python3           # integration test driver
  wrk               # HTTP load benchmarks
  curl              # benchmarks: readiness probes and set-up requests (tests/bench/lib.sh)
  valgrind          # leak checks of the unit tests
  kannel            # SMS gateway (bearerbox, smsbox)
  kannel-extras     # Kannel test tools
  python3-aiosmtpd  # the SMTP sink of the e-mail tests (tests/integration/smtp_sink.py)
  fonts-noto-core   # Noto Nastaliq Urdu, served by the web plugin as /assets/nastaliq.ttf
  chromium          # the browser of the e2e tests (tests/e2e), never a downloaded one
  nodejs            # runs the e2e tests (playwright-core, axe-core); its npm installs them
)

# The e2e tests' node packages, exactly as the lock file pins them (npm ci), when missing or
# older than the lock file. Never a browser download: Debian's chromium is used.
e2e_packages() {
  local dir
  dir="$(cd "$(dirname "$0")/.." && pwd)/tests/e2e"
  [ -f "$dir/package-lock.json" ] || return 0
  if ! command -v npm >/dev/null 2>&1; then
    echo "rabta: npm is missing (the nodejs package here does not bring it): apt-get install npm" >&2
    exit 1
  fi
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
    echo "rabta: installing the e2e tests' node packages (npm ci in tests/e2e)" >&2
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund >&2) || {
      echo "rabta: npm ci failed in $dir" >&2
      exit 1
    }
    touch "$dir/node_modules"
  fi
}

# `tools/deps.sh --fuzz`: also what the fuzz targets need (make fuzz; the main build stays gcc).
if [ "${1:-}" = "--fuzz" ]; then
  PACKAGES+=(clang libclang-rt-14-dev)   # clang and its libFuzzer runtime, for tests/fuzz
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  e2e_packages
  exit 0
fi

echo "rabta: installing missing packages: ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "rabta: these packages are missing and I am not root (and there is no sudo): ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# The kannel and postgresql packages try to start their own services; we start our own
# instances with our own config, so keep the package scripts from starting anything.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
  $SUDO chmod +x "$policy"
  made_policy=1
fi
rc=0
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || rc=$?
[ $made_policy -eq 1 ] && $SUDO rm -f "$policy"
if [ $rc -ne 0 ]; then
  echo "rabta: apt-get could not install: ${missing[*]} (exit $rc)" >&2
  exit 1
fi
still=()
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "rabta: still missing after install: ${still[*]}" >&2
  exit 1
fi
e2e_packages
