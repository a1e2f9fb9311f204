# shellcheck shell=bash
# scripts/deps/30-redis.sh starts a throwaway redis-server for the tests and
# exports KAPGW_TEST_REDIS_URL and KAPGW_TEST_REDIS_SERVER. It is sourced by
# scripts/test.sh, which provides kapgw_apt_install, kapgw_on_exit and
# $KAPGW_TEST_TMP.
#
# redis-server is installed from Debian when it is not on PATH. The server
# listens on 127.0.0.1 only (on the first free port from 63790), keeps no data
# on disk (no RDB snapshots, no AOF), works in $KAPGW_TEST_TMP/redis and is
# shut down again on exit. Tests that simulate an outage start and kill their
# own servers with the binary in KAPGW_TEST_REDIS_SERVER.
# Already-set KAPGW_TEST_REDIS_URL and KAPGW_TEST_REDIS_SERVER are respected:
# with the URL set, nothing is started.

kapgw_redis_main() {
	if [ -z "${KAPGW_TEST_REDIS_SERVER:-}" ]; then
		if ! command -v redis-server >/dev/null 2>&1; then
			kapgw_apt_install redis-server >&2
		fi
		KAPGW_TEST_REDIS_SERVER="$(command -v redis-server)" ||
			{ echo "redis: redis-server missing after installing it" >&2; return 1; }
		export KAPGW_TEST_REDIS_SERVER
	fi

	if [ -n "${KAPGW_TEST_REDIS_URL:-}" ]; then
		echo "redis: using KAPGW_TEST_REDIS_URL from the environment" >&2
		return 0
	fi

	local dir="$KAPGW_TEST_TMP/redis"
	mkdir -p "$dir"
	local port
	for port in $(seq 63790 63889); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			continue # somebody listens here already
		fi
		if kapgw_redis_start "$dir" "$port"; then
			export KAPGW_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
			echo "redis: ready on 127.0.0.1:$port" >&2
			return 0
		fi
	done
	echo "redis: could not start on any port in 63790-63889; see $dir/*.log" >&2
	return 1
}

# kapgw_redis_start starts a daemonized redis-server on 127.0.0.1:$2 with its
# files in $1, registers its shutdown and waits until it answers. It fails
# when the server does not come up (for example because the port was taken
# in the meantime), so that the caller can try the next port.
kapgw_redis_start() {
	local dir="$1" port="$2"
	local pidfile="$dir/redis-$port.pid" logfile="$dir/redis-$port.log"
	rm -f "$pidfile"
	"$KAPGW_TEST_REDIS_SERVER" --bind 127.0.0.1 --port "$port" \
		--save '' --appendonly no --daemonize yes \
		--pidfile "$pidfile" --logfile "$logfile" --dir "$dir" >/dev/null || return 1

	local i pid=""
	for i in $(seq 1 100); do
		[ -s "$pidfile" ] && pid="$(cat "$pidfile")"
		if [ -n "$pid" ] && [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]; then
			# Make sure the PONG came from our server and not from a
			# redis that grabbed the port first.
			if redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r' | grep -qx "process_id:$pid"; then
				kapgw_on_exit "$(printf 'kill %q 2>/dev/null' "$pid")"
				return 0
			fi
			return 1
		fi
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			return 1 # it died, most likely on a taken port
		fi
		sleep 0.1
	done
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	return 1
}

kapgw_redis_main
