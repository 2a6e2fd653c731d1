#!/usr/bin/env bash
# Builds the bridge crate and copies its static library to OUT (only if it changed).
# Usage: cargo_build.sh CARGO TARGET_DIR OUT
#
# TARGET_DIR is shared by every clone on the machine (dependencies build once). Cargo decides
# freshness by file times, which is wrong when two clones with different sources share it, so
# a hash of this crate's sources is kept beside the build: when it differs from the last
# build's, the crate's sources are touched and cargo rebuilds this crate (dependencies stay).
# A lock serialises clones.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo=$1 target=$2 out=$3
mkdir -p "$target" "$(dirname "$out")"
exec 9>"$target/.commentd-bridge.lock"
flock 9
hash=$(cat "$here/Cargo.toml" "$here/Cargo.lock" "$here"/src/*.rs | sha256sum | cut -d' ' -f1)
stamp="$target/.commentd-bridge.src-sha256"
if [ "$(cat "$stamp" 2>/dev/null)" != "$hash" ]; then
  touch "$here"/src/*.rs
fi
CARGO_TARGET_DIR="$target" "$cargo" build --release --locked --quiet --manifest-path "$here/Cargo.toml"
echo "$hash" >"$stamp"
cmp -s "$target/release/libcommentd_bridge.a" "$out" || cp "$target/release/libcommentd_bridge.a" "$out"
