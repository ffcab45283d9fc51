#!/bin/bash
# profile.sh — where the time of the benchmark's worst figures goes.
#
# Run as root after `make bench` (or `make install`): perf must read the
# processes of the unprivileged user that runs PostgreSQL.  It sets up the
# benchmark's cluster and receiver (run.sh with BENCH_ONLY=none, BENCH_KEEP=1,
# BENCH_PGSS=1), then profiles, each alone:
#   trigger-fire     pgbench, 1 client, single-row INSERTs that each fire a webhook
#   trigger-nomatch  the same with events that match no rule
#   trigger-copy     one COPY of PROFILE_COPY events, 10% firing
#   worker-drain     the worker draining PROFILE_N queued deliveries
# For each: perf's flat profile (self time by symbol), the inclusive one
# (children) for the seriesweb functions, pg_stat_statements (every SPI
# statement with its calls and rows per event or per delivery) and, for the
# drain, the CPU time of every process that took part.  The trigger profiles
# run in bench_nw, which the worker does not serve, so nothing else is busy.
#
#   bash test/bench/profile.sh          # text reports in test/bench/profile/
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
user=${SERIESWEB_TEST_USER:-swtest}
out=${PROFILE_OUT:-$here/profile}
secs=${PROFILE_SECONDS:-10}
drain_n=${PROFILE_N:-200000}
copy_n=${PROFILE_COPY:-200000}
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)

[ "$(id -u)" -eq 0 ] || { echo "profile.sh: run as root (perf reads another user's processes)" >&2; exit 1; }
command -v perf >/dev/null || { echo "profile.sh: perf not found (Debian: linux-perf)" >&2; exit 1; }
mkdir -p "$out"

# The benchmark's setup, kept running, owned by the unprivileged user.
tree=$(mktemp -d /tmp/seriesweb-profile.XXXXXX)
cp -r "$here" "$tree/bench"
chown -R "$user" "$tree"
runuser -u "$user" -- env -i PATH="/usr/sbin:$PATH" HOME="$tree" LANG=C.UTF-8 QUICK=1 \
	BENCH_ONLY=none BENCH_KEEP=1 BENCH_PGSS=1 BENCH_REPORT="$tree/report.md" \
	PG_CONFIG="${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" \
	bash "$tree/bench/run.sh" >"$tree/setup.log" 2>&1 || { cat "$tree/setup.log"; exit 1; }
work=$(sed -n 's/^bench: kept \([^ ]*\) .*/\1/p' "$tree/setup.log")
[ -d "$work" ] || { cat "$tree/setup.log"; exit 1; }

cleanup() {
	runuser -u "$user" -- "$bindir/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
	[ -s "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
	rm -rf "$work" "$tree"
}
trap cleanup EXIT

psql_db() { local db=$1; shift; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" "$@"; }
q() { psql_db "$1" -Atc "$2"; }
log() { printf '[profile] %s\n' "$*"; }
worker_pid=$(q bench "SELECT pid FROM seriesweb.worker_status()")

# perf's views of one recording.
perf_views() {		# name
	local data=$out/$1.perf.data
	{
		echo "# $1: self time by symbol (perf report --no-children)"
		perf report -i "$data" --stdio --no-children --sort dso,symbol --percent-limit 0.7 2>/dev/null |
			grep -v '^$' | grep -v '^#' | grep -E '^ +[0-9]'
		echo
		echo "# $1: inclusive time (perf report --children), seriesweb and the main PostgreSQL/libcurl entry points"
		perf report -i "$data" --stdio --children --sort symbol --percent-limit 0.5 -g none 2>/dev/null |
			grep -E '^ +[0-9]' |
			grep -E 'sw_|match|enqueue|reach|load_user|arm|claim|record|create_missing|render|curl_multi|Curl_|SPI_|ExecInsert|ExecUpdate|standard_ExecutorRun|ExecutorStart|ExecutorEnd|CommitTransaction|XLogFlush|RecordTransactionCommit|issue_xlog_fsync|heap_insert|heap_update|index_insert|_bt_doinsert|nextval|jsonb|tuplestore|AfterTrigger|CopyFrom|pgss|poll|epoll|sendto|recvfrom|send|recv' |
			head -60
	} >"$out/$1.txt"
}

pgss_reset() { q bench "SELECT pg_stat_statements_reset()" >/dev/null; }
pgss_dump() {		# name database per-what count
	{
		echo
		echo "# $1: statements in $2 (pg_stat_statements, track = all), per $3 ($4 of them)"
		psql_db bench -P footer=off -c "
			SELECT round(calls::numeric / $4, 3) AS calls_per, round(rows::numeric / greatest(calls, 1), 1) AS rows_per_call,
			       round((total_exec_time / $4 * 1000)::numeric, 2) AS us_per, round(mean_exec_time::numeric, 3) AS ms_per_call,
			       left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
			  FROM pg_stat_statements
			 WHERE calls > 0 AND dbid = (SELECT oid FROM pg_database WHERE datname = '$2')
			 ORDER BY total_exec_time DESC LIMIT 14"
	} >>"$out/$1.txt"
}

# The trigger: pgbench with one client in bench_nw, perf on its backend.
profile_pgbench() {		# name script
	local name=$1 script=$2 pid events
	pgss_reset
	"$bindir/pgbench" -h "$work" -U postgres -n -M prepared -c 1 -T "$secs" -D tag=9$RANDOM \
		-f "$work/$script" bench_nw >"$out/$name.pgbench.txt" 2>&1 &
	local pgb=$!
	for _ in $(seq 50); do
		pid=$(q bench_nw "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1")
		[ -n "$pid" ] && break
		sleep 0.1
	done
	perf record -q -F 1999 -g --call-graph dwarf,32768 -p "$pid" -o "$out/$name.perf.data" -- sleep $((secs - 2)) 2>/dev/null
	wait $pgb
	perf_views "$name"
	{ echo; echo "# pgbench (perf recording for $((secs - 2)) of its $secs s)"; grep -E '^(tps|latency|number of transactions actually)' "$out/$name.pgbench.txt"; } >>"$out/$name.txt"
	events=$(awk '/number of transactions actually processed/ {print $6}' "$out/$name.pgbench.txt")
	pgss_dump "$name" bench_nw event "${events%%/*}"
	log "$name: $(grep '^tps' "$out/$name.pgbench.txt")"
}

profile_copy() {
	local pid tag=7$RANDOM
	awk -v n="$copy_n" -v tag="$tag" 'BEGIN {
		for (i = 1; i <= n; i++)
			if (i % 10 == 0) printf "u%s-%09d\tsignup\t{\"run\": \"%s\"}\n", tag, i, tag
			else printf "p%d\tpageview\t{\"path\": \"/pricing\"}\n", (i * 7919) % 10000 + 1
	}' >"$work/profile-copy.tsv"
	chmod 644 "$work/profile-copy.tsv"
	pgss_reset
	PGAPPNAME=profile-copy psql_db bench_nw \
		-c "COPY seriesweb.events (user_id, name, properties) FROM '$work/profile-copy.tsv'" &
	local copy=$!
	for _ in $(seq 50); do
		pid=$(q bench_nw "SELECT pid FROM pg_stat_activity WHERE application_name = 'profile-copy' LIMIT 1")
		[ -n "$pid" ] && break
		sleep 0.05
	done
	perf record -q -F 999 -g --call-graph dwarf,32768 -p "$pid" -o "$out/trigger-copy.perf.data" 2>/dev/null &
	local perf=$!
	wait $copy
	kill -INT $perf; wait $perf || true
	perf_views trigger-copy
	pgss_dump trigger-copy bench_nw event "$copy_n"
	log "trigger-copy: $copy_n events profiled"
}

cpu_ticks() {	# pid: utime + stime in clock ticks
	awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# The worker: queue drain_n deliveries in one COPY (the worker is idle
# meanwhile), then record the drain.
profile_drain() {
	local tag=6$RANDOM t0 t1 pids offset
	awk -v n="$drain_n" -v tag="$tag" 'BEGIN {
		for (i = 1; i <= n; i++) printf "u%s-%09d\tsignup\t{\"run\": \"%s\"}\n", tag, i, tag
	}' >"$work/profile-drain.tsv"
	chmod 644 "$work/profile-drain.tsv"
	offset=$(stat -c %s "$work/access.log")
	psql_db bench -c "COPY seriesweb.events (user_id, name, properties) FROM '$work/profile-drain.tsv'" \
		-c "SELECT pg_stat_statements_reset()" >/dev/null
	# Every process that may work during the drain, with its CPU time so far.
	pids=$(pgrep -u "$user" -f "postgres|nginx" | tr '\n' ' ')
	declare -A before
	for p in $pids; do before[$p]=$(cpu_ticks "$p"); done
	t0=$(date +%s.%N)
	perf record -q -F 499 -g --call-graph dwarf,16384 -p "$worker_pid" -o "$out/worker-drain.perf.data" 2>/dev/null &
	local perf=$!
	# Follow nginx's log (a query would compete with the worker).
	perl "$here/bench.pl" wait "$work/access.log" "$offset" "$drain_n" 900 >/dev/null
	t1=$(date +%s.%N)
	kill -INT $perf; wait $perf || true
	perf_views worker-drain
	pgss_dump worker-drain bench delivery "$drain_n"
	{
		echo
		echo "# worker-drain: CPU seconds per process during the drain ($(perl -e "printf '%.1f', $t1 - $t0") s wall, $drain_n deliveries)"
		for p in $pids; do
			local d=$(( $(cpu_ticks "$p") - ${before[$p]:-0} ))
			if [ "$d" -gt 0 ]; then
				printf '%8.2f  %s\n' "$(perl -e "print $d / $(getconf CLK_TCK)")" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60)"
			fi
		done | sort -rn
	} >>"$out/worker-drain.txt"
	log "worker-drain: $drain_n deliveries in $(perl -e "printf '%.1f', $t1 - $t0") s"
}

log "cluster in $work, results in $out"
profile_pgbench trigger-fire fire.sql
profile_pgbench trigger-nomatch nomatch.sql
profile_copy
profile_drain
rm -f "$out"/*.perf.data "$out"/*.perf.data.old
log "done: $(ls "$out" | tr '\n' ' ')"
