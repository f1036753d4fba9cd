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
# The design lives in the repository (docs/architecture.md); no document may send a reader to
# a file that is not there: every relative link of README.md and docs/ must resolve.
if hits=$(grep -n 'DESIGN\.md' README.md docs/*.md); then
    echo "lint: DESIGN.md is not in the repository; refer to docs/architecture.md:"
    echo "$hits"
    bad=1
fi
for doc in README.md docs/*.md; do
    for link in $(grep -o '\](\([^)#]*\))' "$doc" | sed 's/^](\(.*\))$/\1/' | grep -v '://'); do
        if [ ! -e "$(dirname "$doc")/$link" ]; then
            echo "lint: $doc links to $link, which does not exist"
            bad=1
        fi
    done
done
exit $bad
