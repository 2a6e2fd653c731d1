#!/usr/bin/env bash
# Builds the bridge crate and copies its static library to OUT (only if it changed).
# Usage: cargo_build.sh CARGO TARGET_DIR OUT
#
# TARGET_DIR is shared by every clone on the machine, so the dependencies build once. The
# crate itself is built from a mirror of its sources inside TARGET_DIR, which every clone
# updates file by file, only where the content differs: cargo (freshness by file time) and
# rustc's incremental cache (keyed by path) then see one crate whatever the clone's path, and
# rebuild exactly what changed. rustc's messages name the mirror's files, which are byte for
# byte the clone's src/bridge files. A lock serialises clones.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo=$1 target=$2 out=$3
mirror="$target/commentd-bridge-src"
mkdir -p "$mirror/src" "$(dirname "$out")"
exec 9>"$target/.commentd-bridge.lock"
flock 9
put() { cmp -s "$1" "$2" || cp "$1" "$2"; }
put "$here/Cargo.toml" "$mirror/Cargo.toml"
put "$here/Cargo.lock" "$mirror/Cargo.lock"
for f in "$here"/src/*.rs; do put "$f" "$mirror/src/${f##*/}"; done
for f in "$mirror"/src/*.rs; do [ -e "$here/src/${f##*/}" ] || rm -f "$f"; done
CARGO_TARGET_DIR="$target" "$cargo" build --release --locked --quiet --manifest-path "$mirror/Cargo.toml"
put "$target/release/libcommentd_bridge.a" "$out"
