#!/usr/bin/env bash
# Installs Foundry's anvil (the local Ethereum node the blockchain service runs against in development and
# tests) from the npm package @foundry-rs/anvil into .tools/anvil (gitignored). The binary ships inside the
# registry package for the platform; nothing else is downloaded. Safe to run again: it only installs when
# the pinned version is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

ANVIL_VERSION=1.7.1
PREFIX=.tools/anvil

installed() {
  local bin
  bin=$(ls "$PREFIX"/node_modules/@foundry-rs/anvil-*/bin/anvil 2>/dev/null | head -n 1)
  [ -n "$bin" ] && [ -x "$bin" ] && grep -q "\"version\": \"$ANVIL_VERSION\"" "$PREFIX/node_modules/@foundry-rs/anvil/package.json"
}

if installed; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "anvil: installing npm from Debian's packages"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "anvil: npm is needed to install the local Ethereum node (as root: apt-get install npm)" >&2
    exit 1
  fi
fi
echo "anvil: installing @foundry-rs/anvil@$ANVIL_VERSION into $PREFIX"
mkdir -p "$PREFIX"
# No package.json or lock file is written: the version is pinned here.
npm install --prefix "$PREFIX" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
  "@foundry-rs/anvil@$ANVIL_VERSION" >/dev/null
installed || { echo "anvil: the package installed no binary for this platform" >&2; exit 1; }
