#!/usr/bin/env bash
# Installs the pinned schemathesis (PyPI) into its own venv under ~/.cache/commentd, once, and
# prints the path of its CLI. Idempotent: a machine that has it runs no pip at all.
set -euo pipefail
VERSION=4.32.5
VENV="${COMMENTD_CACHE:-$HOME/.cache/commentd}/schemathesis-$VERSION"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  echo "install-schemathesis: installing schemathesis==$VERSION into $VENV" >&2
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION" >&2
fi
echo "$VENV/bin/schemathesis"
