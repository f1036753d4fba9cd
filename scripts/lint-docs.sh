#!/usr/bin/env bash
# Keeps the README's command list true: every command in src/node/commands.def must be named
# in README.md, so a command added to the table cannot go undocumented.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
for name in $(sed -n 's/^CMD("\([a-z]*\)".*/\1/p' src/node/commands.def); do
    upper=$(echo "$name" | tr '[:lower:]' '[:upper:]')
    if ! grep -qw "$upper" README.md; then
        echo "lint: command $upper is in commands.def but not in README.md"
        bad=1
    fi
done
exit $bad
