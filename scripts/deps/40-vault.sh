# shellcheck shell=bash
# scripts/deps/40-vault.sh starts a real, in-memory Vault server on loopback
# for the tests and exports KAPGW_TEST_VAULT_ADDR, KAPGW_TEST_VAULT_TOKEN (a
# root token) and KAPGW_TEST_VAULTDEV_BIN (so tests can start their own
# Vault to stop or seal it). It is sourced by scripts/test.sh, which provides
# kapgw_apt_install, kapgw_on_exit and $KAPGW_TEST_TMP.
#
# The server is tools/vaultdev (its own Go module, built from Vault's source
# because Debian packages no Vault). The binary is cached under
# ~/.cache/kapgw keyed by a hash of that module's sources, so only the first
# run pays for the (large) build. The server is prepared with
# deploy/vault/bootstrap.sh, exactly as a real Vault would be.
# Already-set KAPGW_TEST_VAULT_* variables are respected: nothing is started.

kapgw_vault_main() {
	kapgw_apt_install curl ca-certificates
	if [ -z "${KAPGW_TEST_VAULTDEV_BIN:-}" ]; then
		KAPGW_TEST_VAULTDEV_BIN="$(kapgw_vault_build)"
		export KAPGW_TEST_VAULTDEV_BIN
	fi
	if [ -n "${KAPGW_TEST_VAULT_ADDR:-}" ] && [ -n "${KAPGW_TEST_VAULT_TOKEN:-}" ]; then
		echo "vault: using KAPGW_TEST_VAULT_ADDR from the environment" >&2
		return 0
	fi

	local dir="$KAPGW_TEST_TMP/vault"
	mkdir -p "$dir"
	"$KAPGW_TEST_VAULTDEV_BIN" -addr 127.0.0.1:0 >"$dir/ready.json" 2>"$dir/server.log" &
	local pid=$!
	kapgw_on_exit "kill $pid 2>/dev/null; wait $pid 2>/dev/null"

	local i line=""
	for i in $(seq 1 120); do
		# The background job may not have created the file yet.
		line="$(head -n 1 "$dir/ready.json" 2>/dev/null || true)"
		[ -n "$line" ] && break
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "vault: vaultdev exited; see $dir/server.log" >&2
			cat "$dir/server.log" >&2
			return 1
		fi
		sleep 0.5
	done
	if [ -z "$line" ]; then
		echo "vault: not ready after 60s; see $dir/server.log" >&2
		return 1
	fi
	KAPGW_TEST_VAULT_ADDR="$(kapgw_vault_field addr "$line")"
	KAPGW_TEST_VAULT_TOKEN="$(kapgw_vault_field token "$line")"
	export KAPGW_TEST_VAULT_ADDR KAPGW_TEST_VAULT_TOKEN

	VAULT_ADDR="$KAPGW_TEST_VAULT_ADDR" VAULT_TOKEN="$KAPGW_TEST_VAULT_TOKEN" \
		sh deploy/vault/bootstrap.sh >"$dir/bootstrap.log" 2>&1 ||
		{ cat "$dir/bootstrap.log" >&2; return 1; }
	echo "vault: ready on $KAPGW_TEST_VAULT_ADDR" >&2
}

# kapgw_vault_field NAME JSON prints a string field of vaultdev's ready line.
kapgw_vault_field() {
	printf '%s' "$2" | sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p"
}

# kapgw_vault_build prints the path of a vaultdev binary built from the
# current sources, building it only when the cache has none.
kapgw_vault_build() {
	local src=tools/vaultdev
	local hash
	hash="$(cat "$src/go.mod" "$src/go.sum" "$src"/*.go | sha256sum | cut -c1-16)"
	local cache="${XDG_CACHE_HOME:-$HOME/.cache}/kapgw"
	local bin="$cache/vaultdev-$hash"
	if [ ! -x "$bin" ]; then
		mkdir -p "$cache"
		echo "vault: building tools/vaultdev (first build downloads Vault's dependencies)" >&2
		local start=$SECONDS
		(cd "$src" && go build -o "$bin.tmp" .) >&2
		mv "$bin.tmp" "$bin"
		echo "vault: built vaultdev in $((SECONDS - start))s" >&2
	fi
	echo "$bin"
}

kapgw_vault_main
