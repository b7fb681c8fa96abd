#!/usr/bin/env bash
# Installs the Debian 12 packages llmcache needs. A no-op (no apt-get at all) when they are all
# present. Run as root.
#   setup.sh       everything: build, run, test, benchmark (the README's test command)
#   setup.sh run   only what building and running the gateway needs (the README's run command:
#                  a first run on a fresh machine installs a third of the packages)
set -euo pipefail

RUN_PACKAGES=(
  # toolchain
  g++ cmake ninja-build ccache pkg-config make
  # libraries (DESIGN.md, Dependencies)
  libboost1.81-dev libboost-json1.81-dev libboost-system1.81-dev libboost-url1.81-dev
  libicu-dev libssl-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev libsqlite3-dev
  libcli11-dev libspdlog-dev
  # the Redis tier's client (CACHE_REDIS_URL): hiredis 0.14 for the protocol; its TLS
  # (rediss://) is libssl-dev's, above
  libhiredis-dev
  # the semantic cache's vector index (header-only hnswlib 0.6.2; docs/semantic.md)
  libhnswlib-dev
  # TLS to the providers, and the README's curl example
  ca-certificates curl
)
TEST_PACKAGES=(
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev python3 wrk hyperfine
  # checks (scripts/check.sh): formatting against .clang-format (clang-format 14)
  clang-format
  # fuzz targets (fuzz/run.sh): clang with libFuzzer and the sanitizer runtimes
  clang libclang-rt-14-dev
  # end-to-end tests: npm installs the pinned SDKs and a Node 22 binary (tests/e2e/run.sh)
  nodejs npm
  # the dashboard in a headless browser (tests/dashboard) and the alert mails' SMTP sink (tests/alerts)
  chromium python3-aiosmtpd
  # the Redis tier's tests start their own redis-server on a free port (the package's system
  # service is not used); the TLS tests make a throwaway CA with the openssl command
  redis-server openssl
)
if [ "${1:-all}" = run ]; then
  PACKAGES=("${RUN_PACKAGES[@]}")
else
  PACKAGES=("${RUN_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
fi

missing=()
for p in "${PACKAGES[@]}"; do
  # A node/npm from elsewhere will do: NodeSource's nodejs bundles npm and conflicts with
  # Debian's npm package, so asking apt for it there would fail.
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
