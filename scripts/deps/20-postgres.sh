# shellcheck shell=bash
# scripts/deps/20-postgres.sh starts a throwaway PostgreSQL 15 server for the
# tests and exports KAPGW_TEST_DATABASE_URL. It is sourced by scripts/test.sh,
# which provides kapgw_apt_install, kapgw_on_exit and $KAPGW_TEST_TMP.
#
# The cluster lives in $KAPGW_TEST_TMP/pg, listens on 127.0.0.1 only (on the
# first free port from 54329), trusts local connections, runs with fsync off
# (test data is disposable) and is stopped again on exit. PostgreSQL refuses
# to run as root, so as root the server runs as the `postgres` OS user.
# An already-set KAPGW_TEST_DATABASE_URL is respected: nothing is started.

kapgw_pg_main() {
	if [ -n "${KAPGW_TEST_DATABASE_URL:-}" ]; then
		echo "postgres: using KAPGW_TEST_DATABASE_URL from the environment" >&2
		return 0
	fi

	local bin
	bin="$(kapgw_pg_bindir)"
	kapgw_pg_user

	local dir="$KAPGW_TEST_TMP/pg"
	# The postgres user must be able to reach its directories below the
	# (root-owned, 0700) scratch dir; if a parent still bars it (a scratch
	# dir under /root), use a directory of its own under /tmp.
	chmod 0711 "$KAPGW_TEST_TMP"
	if ! kapgw_pg_as test -x "$KAPGW_TEST_TMP"; then
		dir="$(mktemp -d /tmp/kapgw-pg.XXXXXX)"
		kapgw_on_exit "$(printf 'rm -rf %q' "$dir")"
	fi
	mkdir -p "$dir/run"
	if [ "$(id -u)" = 0 ]; then
		chown -R postgres: "$dir"
	fi

	kapgw_pg_as "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; return 1; }

	local port
	port="$(kapgw_pg_free_port)"
	local opts="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir/run"
	opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
	kapgw_pg_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$opts" -w -t 60 start >/dev/null ||
		{ cat "$dir/server.log" >&2; return 1; }
	kapgw_on_exit "$(printf 'kapgw_pg_as %q -D %q -m fast stop >/dev/null' "$bin/pg_ctl" "$dir/data")"

	local i
	for i in $(seq 1 60); do
		if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
			export KAPGW_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
			echo "postgres: ready on 127.0.0.1:$port" >&2
			return 0
		fi
		sleep 0.5
	done
	echo "postgres: not ready after 30s; see $dir/server.log" >&2
	return 1
}

# kapgw_pg_bindir prints the PostgreSQL 15 bin directory, installing the
# server from Debian when it is missing.
kapgw_pg_bindir() {
	local bin=/usr/lib/postgresql/15/bin
	if [ ! -x "$bin/pg_ctl" ]; then
		kapgw_apt_install postgresql-15 >&2
	fi
	if [ ! -x "$bin/pg_ctl" ]; then
		echo "postgres: $bin/pg_ctl missing after installing postgresql-15" >&2
		return 1
	fi
	echo "$bin"
}

# kapgw_pg_user creates the postgres OS user when running as root without it.
kapgw_pg_user() {
	[ "$(id -u)" = 0 ] || return 0
	id postgres >/dev/null 2>&1 && return 0
	useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
}

# kapgw_pg_as runs a PostgreSQL binary as the postgres user when we are root.
kapgw_pg_as() {
	if [ "$(id -u)" = 0 ]; then
		(cd / && runuser -u postgres -- "$@")
	else
		(cd / && "$@")
	fi
}

# kapgw_pg_free_port prints the first port from 54329 nobody listens on.
kapgw_pg_free_port() {
	local port
	for port in $(seq 54329 54429); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	echo "postgres: no free port in 54329-54429" >&2
	return 1
}

kapgw_pg_main
