#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: provisions what the tests need
# (nix-bin for the interop tests, Garage for the S3 tests), then runs fmt, clippy and every test.
# Already-present tools are reused, so a second run starts testing at once.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Real Nix (Debian's nix-bin 2.8, single-user, no daemon).
if ! command -v nix-store >/dev/null 2>&1; then
  echo "==> installing nix-bin"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nix-bin >/dev/null
fi
$SUDO nix-store --init

# A real S3 server: Garage, built from the crate registry (about 8 minutes on 2 cores, once).
if ! command -v garage >/dev/null 2>&1; then
  echo "==> installing garage 2.5.0"
  cargo install --locked garage --version 2.5.0 --no-default-features --features bundled-libs,sqlite
fi

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "==> cargo test"
cargo test --locked
