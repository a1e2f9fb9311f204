#!/usr/bin/env bash
# scripts/test.sh runs every test of kapgw on a fresh Debian machine.
#
# It installs what the tests need (apt-get, npm), starts real PostgreSQL,
# Redis and Vault servers on loopback in a scratch directory, exports their
# addresses, runs `go test ./...` and stops the servers again. Tests that need
# a server fail loudly when its variable is missing; they never skip.
#
# Each file in scripts/deps/ starts one dependency; they are sourced in name
# order and register their own cleanup with `kapgw_on_exit`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export KAPGW_TEST_TMP="${KAPGW_TEST_TMP:-$(mktemp -d /tmp/kapgw-test.XXXXXX)}"

KAPGW_EXIT_HOOKS=()
kapgw_on_exit() { KAPGW_EXIT_HOOKS+=("$1"); }
run_exit_hooks() {
	local i
	for ((i = ${#KAPGW_EXIT_HOOKS[@]} - 1; i >= 0; i--)); do
		eval "${KAPGW_EXIT_HOOKS[$i]}" || true
	done
}
trap run_exit_hooks EXIT

APT_UPDATED=0
# kapgw_apt_install installs Debian packages when any of them is missing.
kapgw_apt_install() {
	local missing=()
	local p
	for p in "$@"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$APT_UPDATED" = 0 ]; then
		apt-get update -qq
		APT_UPDATED=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

for dep in scripts/deps/*.sh; do
	echo "== starting $(basename "$dep" .sh)" >&2
	# shellcheck source=/dev/null
	source "$dep"
done

echo "== go test" >&2
go test -count=1 -timeout 40m "$@" ./...
