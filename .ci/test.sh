#!/usr/bin/env bash
# The whole test suite, from a fresh Debian machine: provisions what the tests need
# (nix-bin for the interop tests, Garage and Ceph RGW for the S3 tests), then runs fmt, clippy and every test.
# Already-present tools are reused, so a second run starts testing at once.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

# Real Nix (Debian's nix-bin 2.8, single-user, no daemon) and tmux (the dashboard's
# end-to-end test drives it in a real terminal).
missing=""
command -v nix-store >/dev/null 2>&1 || missing="$missing nix-bin"
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
# python3: the HTTP cache tests serve caches with `python3 -m http.server`.
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
# A C toolchain (Garage's bundled LMDB and SQLite, and some crates, compile C) and curl (rustup).
command -v cc >/dev/null 2>&1 || missing="$missing build-essential"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v curl >/dev/null 2>&1 || missing="$missing curl ca-certificates"
# A real single-host Ceph cluster with its S3 gateway (RADOS Gateway): the versioned-bucket,
# lifecycle and object-lock tests run against it (tests/common/rgw.rs starts it).
ceph=""
for b in radosgw ceph-mon ceph-osd ceph; do
  command -v "$b" >/dev/null 2>&1 || ceph="radosgw ceph-mon ceph-osd ceph-common"
done
if [ -n "$missing$ceph" ]; then
  echo "==> installing$missing $ceph"
  $SUDO apt-get update -qq
  [ -z "$missing" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
  [ -z "$ceph" ] || DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $ceph >/dev/null
fi
$SUDO nix-store --init

# Rust through rustup (Debian's rustc is older than the crate's rust-version), with clippy
# and rustfmt, unless a toolchain is already installed.
if ! command -v cargo >/dev/null 2>&1; then
  echo "==> installing Rust (rustup, stable)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
    sh -s -- -y --profile minimal --component clippy,rustfmt >/dev/null
fi

# A real S3 server: Garage, built from the crate registry (about 10 minutes on 2 cores, once),
# with its LMDB metadata engine (the one Garage recommends, and the fast one for reads).
if ! garage --version 2>/dev/null | grep -q lmdb; then
  echo "==> installing garage 2.5.0"
  cargo install --locked --force garage --version 2.5.0 --no-default-features --features bundled-libs,lmdb,sqlite
fi

echo "==> cargo fmt --check"
cargo fmt --check
echo "==> layers"
bash .ci/layers.sh
echo "==> cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "==> cargo doc"
# Doc links must resolve: a moved item leaves no dangling link behind.
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --quiet
echo "==> cargo test"
# Snapshots are compared, never written, here.
INSTA_UPDATE=no CI=true cargo test --locked
