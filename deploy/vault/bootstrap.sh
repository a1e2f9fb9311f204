#!/bin/sh
# deploy/vault/bootstrap.sh prepares a Vault server for kapgw. It is
# idempotent: run it after every Vault upgrade or policy change.
#
# It enables KV v2 at kv/, Transit at transit/ and AppRole auth at approle/
# (when missing), creates the Transit keys kapgw-token (ecdsa-p384),
# kapgw-rx (ecdsa-p384) and kapgw-exchange (aes256-gcm96), writes the
# policies in policies/, and creates the AppRole role kapgw-gateway (and the
# Kubernetes role of the same name when a kubernetes/ auth mount exists).
#
# Needs only POSIX sh, curl and awk (no vault CLI). Environment:
#   VAULT_ADDR   Vault base URL (required), for example http://127.0.0.1:8200
#   VAULT_TOKEN  a token allowed to configure mounts and policies (required)
#   KAPGW_SECRET_ID_FILE  when set, a new AppRole secret_id is written there
#                         (mode 0600); the role_id is always printed.
#   KAPGW_K8S_NAMESPACE   service account namespace for the Kubernetes role
#                         (default kapgw); the service account is kapgw.
set -eu

: "${VAULT_ADDR:?set VAULT_ADDR}"
: "${VAULT_TOKEN:?set VAULT_TOKEN}"
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
umask 077
# The token goes to curl in a header file, never on its command line.
printf 'X-Vault-Token: %s\n' "$VAULT_TOKEN" >"$WORK/headers"

# vault METHOD PATH [JSON]: calls the HTTP API, leaves the body in
# $WORK/body and prints the status code.
vault() {
	if [ $# -ge 3 ]; then
		printf '%s' "$3" >"$WORK/req"
	else
		: >"$WORK/req"
	fi
	curl -sS -o "$WORK/body" -w '%{http_code}' -X "$1" -H @"$WORK/headers" \
		-H 'Content-Type: application/json' --data-binary @"$WORK/req" "${VAULT_ADDR%/}/v1/$2"
}

# must METHOD PATH [JSON]: like vault, but fails unless the status is 2xx.
must() {
	status=$(vault "$@")
	case "$status" in
	2??) ;;
	*)
		echo "bootstrap: $1 /v1/$2 -> HTTP $status: $(cat "$WORK/body")" >&2
		exit 1
		;;
	esac
}

# json_file FILE: prints FILE's content as a JSON string.
json_file() {
	awk 'BEGIN { ORS = ""; print "\"" }
	{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); print $0 "\\n" }
	END { print "\"" }' "$1"
}

# field NAME: prints a string field of the last response body.
field() {
	sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$WORK/body"
}

# enable KIND PATH TYPE JSON: enables a secrets engine or auth method at
# PATH when nothing is mounted there, and checks the type when something is.
enable() {
	status=$(vault GET "sys/$1/$2")
	if [ "$status" = 200 ]; then
		if ! grep -q "\"type\":\"$3\"" "$WORK/body"; then
			echo "bootstrap: sys/$1/$2 is mounted with another type than $3" >&2
			exit 1
		fi
		echo "bootstrap: $2/ already enabled ($3)"
		return 0
	fi
	must POST "sys/$1/$2" "$4"
	echo "bootstrap: enabled $2/ ($3)"
}

# transit_key NAME TYPE: creates a non-exportable Transit key when missing.
transit_key() {
	if [ "$(vault GET "transit/keys/$1")" = 200 ]; then
		echo "bootstrap: transit key $1 exists"
		return 0
	fi
	must POST "transit/keys/$1" "{\"type\":\"$2\",\"exportable\":false,\"allow_plaintext_backup\":false}"
	echo "bootstrap: created transit key $1 ($2)"
}

enable mounts kv kv '{"type":"kv","options":{"version":"2"},"description":"kapgw static secrets"}'
must GET sys/mounts/kv
if ! grep -q '"version":"2"' "$WORK/body"; then
	echo "bootstrap: kv/ is not KV version 2" >&2
	exit 1
fi
enable mounts transit transit '{"type":"transit","description":"kapgw signing and encryption"}'
enable auth approle approle '{"type":"approle"}'

transit_key kapgw-token ecdsa-p384
transit_key kapgw-rx ecdsa-p384
transit_key kapgw-exchange aes256-gcm96

for policy in "$HERE"/policies/*.hcl; do
	name=$(basename "$policy" .hcl)
	must PUT "sys/policies/acl/$name" "{\"policy\":$(json_file "$policy")}"
	echo "bootstrap: wrote policy $name"
done

must POST auth/approle/role/kapgw-gateway \
	'{"token_policies":["kapgw-gateway"],"token_ttl":"1h","token_max_ttl":"4h","secret_id_ttl":"720h","token_type":"service","bind_secret_id":true}'
must GET auth/approle/role/kapgw-gateway/role-id
echo "bootstrap: approle kapgw-gateway role_id=$(field role_id)"

if [ -n "${KAPGW_SECRET_ID_FILE:-}" ]; then
	must POST auth/approle/role/kapgw-gateway/secret-id '{}'
	field secret_id >"$KAPGW_SECRET_ID_FILE"
	chmod 600 "$KAPGW_SECRET_ID_FILE"
	echo "bootstrap: wrote a new secret_id to $KAPGW_SECRET_ID_FILE"
fi

if [ "$(vault GET sys/auth/kubernetes)" = 200 ]; then
	must POST auth/kubernetes/role/kapgw-gateway \
		"{\"bound_service_account_names\":[\"kapgw\"],\"bound_service_account_namespaces\":[\"${KAPGW_K8S_NAMESPACE:-kapgw}\"],\"token_policies\":[\"kapgw-gateway\"],\"token_ttl\":\"1h\",\"token_max_ttl\":\"4h\"}"
	echo "bootstrap: kubernetes role kapgw-gateway"
fi
echo "bootstrap: done"
