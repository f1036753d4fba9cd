#!/usr/bin/env bash
# Installs every build and test dependency of halyard from Debian's packages, idempotently.
# As root it runs apt-get; otherwise it prints the command to run.
set -euo pipefail

PKGS=(build-essential pkg-config clang clang-format libclang-rt-14-dev
      libuv1-dev libssl-dev libyaml-dev libmicrohttpd-dev libcmocka-dev
      python3 python3-pytest python3-pytest-xdist python3-redis redis-tools redis-server iproute2 procps
      prometheus libhiredis-dev tcl libcurl4-openssl-dev stress-ng
      liblua5.1-0-dev lua-cjson-dev lua-bitop-dev)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "halyard needs: ${missing[*]}"
    echo "run as root:   apt-get update && $cmd"
    exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends "${missing[@]}"
