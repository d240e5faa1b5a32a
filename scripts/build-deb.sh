#!/bin/bash
# scripts/build-deb.sh OUTDIR — build the Debian package (debian/) with
# `dpkg-buildpackage -us -uc -b` in a temporary copy of the tree (the working
# tree and its build/ stay untouched), put vmgate_*.deb and the .buildinfo /
# .changes into OUTDIR, and run lintian on the result when it is installed
# (its findings are printed, not fatal).  `make deb` calls it.
set -euo pipefail

OUT=${1:?usage: build-deb.sh OUTDIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for t in dpkg-buildpackage dh; do
    command -v "$t" >/dev/null || { echo "build-deb: $t missing (apt-get install dpkg-dev debhelper)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/vmgate-deb.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir "$W/vmgate"
# the tree as it is now (uncommitted changes too), without build output
tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude=./demo -cf - . | tar -C "$W/vmgate" -xf -
(cd "$W/vmgate" && dpkg-buildpackage -us -uc -b -j"$(nproc)") >"$W/build.log" 2>&1 ||
    { tail -40 "$W/build.log" >&2; echo "build-deb: dpkg-buildpackage failed" >&2; exit 1; }
cp "$W"/vmgate*_*.deb "$W"/vmgate_*.buildinfo "$W"/vmgate_*.changes "$OUT"/
ls "$OUT"/vmgate_*.deb
if command -v lintian >/dev/null; then
    echo "lintian:"
    lintian --info --allow-root "$OUT"/vmgate_*.changes 2>&1 | sed 's/^/  /' || true
fi
