#!/usr/bin/env bash
# install-deps.sh - install the Debian 12 packages PPCP needs to build, test
# and run its demo.  Idempotent: packages already installed are skipped, and
# `apt-get update` runs once, only when something is missing.
set -euo pipefail

PACKAGES=(
	build-essential cmake ninja-build pkg-config
	libssl-dev libjansson-dev libuv1-dev libinih-dev libcmocka-dev
	scdoc python3 python3-cryptography iproute2 nftables
	clang libclang-rt-14-dev valgrind
)

step() { printf 'install-deps: %s\n' "$*"; }

if [ "$(id -u)" -eq 0 ]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1; then
	SUDO=(sudo)
else
	SUDO=()
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
	step "dpkg-query/apt-get not found: this script supports Debian 12 only" >&2
	exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	if [ "$status" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -eq 0 ]; then
	step "all ${#PACKAGES[@]} packages already installed"
	exit 0
fi

if [ "$(id -u)" -ne 0 ] && [ "${#SUDO[@]}" -eq 0 ]; then
	step "missing ${missing[*]}, and not root and no sudo: run this script as root" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
step "missing: ${missing[*]}"
step "running apt-get update"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
step "running apt-get install ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
step "done"
