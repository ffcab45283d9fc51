#!/bin/bash
# run.sh — the seriesweb benchmark (issue 5): the figures of the README's
# Performance section, each the median/min/max of several runs and, where it
# is a speed, a ratio against a baseline measured in the same run.
#
# Run by `make bench` (QUICK=1 for a smoke run of about a minute) as an
# unprivileged user.  It starts a throwaway cluster (library preloaded, fsync
# and synchronous_commit on) and an nginx receiver on 127.0.0.1, drives the
# load with pgbench and COPY, measures the receiver's own ceiling with wrk,
# counts and times every arrival from nginx's access log ($msec), checks that
# every delivery the database counts as sent was received, and writes
# test/bench/report.md.  bench.pl does the measuring and the report.
#
# Environment: QUICK=1; BENCH_REPORT (where the report goes); BENCH_KEEP=1
# keeps the cluster, nginx and the work directory when done (for profiling);
# BENCH_PGSS=1 preloads pg_stat_statements (track = all) in the bench
# database; BENCH_ONLY="ceiling nomatch nomatch_waiting watched fire fire_nw copy
# import queue release latency slow" runs a subset ("none": only the setup); PG_CONFIG picks the server.
# profile.sh uses the last three.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bindir=$("${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}" --bindir)
report=${BENCH_REPORT:-$here/report.md}
quick=${QUICK:-}
[ "$quick" = 0 ] && quick=""
only=" ${BENCH_ONLY:-ceiling nomatch nomatch_waiting watched fire fire_nw copy import queue release latency slow} "

# Sizes.  Runs alternate baseline and measured variant (ABBA), so drift
# on this shared machine hits both alike.
clients=8				# pgbench clients for the insert figures
if [ -n "$quick" ]; then
	mode=quick; insert_runs=3; runs=3; insert_s=1; wrk_s=1
	import_n=2000; copy_n=50000; q1_n=5000; q2_n=20000; lat_s=2; slow_n=2000; slow_window=2
	release_n=10000; release_wait_s=5; held_n=10000
else
	mode=full; insert_runs=5; runs=3; insert_s=5; wrk_s=5
	import_n=20000; copy_n=1000000; q1_n=100000; q2_n=1000000; lat_s=15; slow_n=20000; slow_window=10
	release_n=100000; release_wait_s=15; held_n=100000
fi
body_bytes=210

work=$(mktemp -d /tmp/seriesweb-bench.XXXXXX)
data=$work/data
results=$work/results.tsv
nginx_log=$work/access.log
started=$(date +%s)
: >"$results"
# Other work on the machine skews every figure: note how much there was.
cpu_stall_us() { sed -n 's/^some .*total=\([0-9]*\).*/\1/p' /proc/pressure/cpu 2>/dev/null; }
stall_at_start=$(cpu_stall_us)
load_at_start=$(cut -d' ' -f1 /proc/loadavg)

log() { printf '[bench %4ds] %s\n' "$(($(date +%s) - started))" "$*"; }
die() { echo "bench: $*" >&2; exit 1; }

cleanup() {
	local status=$?
	if [ -n "${BENCH_KEEP:-}" ]; then
		echo "bench: kept $work (cluster: -h $work -U postgres bench; nginx pid $(cat "$work/nginx.pid" 2>/dev/null))"
		exit $status
	fi
	# A server still in crash recovery may not stop fast: then immediately.
	"$bindir/pg_ctl" -D "$data" -m fast -t 30 stop >/dev/null 2>&1 ||
		"$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
	[ -s "$work/nginx.pid" ] && kill -QUIT "$(cat "$work/nginx.pid")" 2>/dev/null || true
	if [ $status -ne 0 ]; then
		echo "bench: failed; server log and nginx logs kept in $work" >&2
	elif [ -e "$work/problems" ]; then
		rm -rf "$data"
		echo "bench: some checks failed (see the report); server and nginx logs kept in $work" >&2
	else
		rm -rf "$work"
	fi
	exit $status
}
trap cleanup EXIT

result() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$results"; }
# Numbered through a file: checks are also made in subshells ($(...)).
check() {
	local n
	n=$(($(cat "$work/checks" 2>/dev/null || echo 0) + 1))
	echo $n >"$work/checks"
	result check "$n" "$*"
	log "check: $*" >&2
	case "$*" in \**) touch "$work/problems" ;; esac
}

psql_db() { local db=$1; shift; "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$work" -U postgres -d "$db" "$@"; }
q() { psql_db bench -Atc "$1"; }
pgbench() { "$bindir/pgbench" -h "$work" -U postgres -n -M prepared "$@"; }
now() { date +%s.%N; }
log_size() { stat -c %s "$nginx_log"; }
calc() { perl -e "printf '%.${2:-3}f', $1"; }
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# A tag per measured run: it names the run's users and URL paths.
tag_counter=0
next_tag() { tag_counter=$((tag_counter + 1)); tag=$(printf '%04d' $tag_counter); }

# ---------------------------------------------------------------------------
# The receiver and the cluster
# ---------------------------------------------------------------------------

start_nginx() {
	local echo_module=/usr/lib/nginx/modules/ngx_http_echo_module.so
	command -v nginx >/dev/null || PATH=$PATH:/usr/sbin
	command -v nginx >/dev/null || die "nginx not found (Debian: nginx-light)"
	command -v wrk >/dev/null || die "wrk not found (Debian: wrk)"
	[ -f $echo_module ] || die "$echo_module not found (Debian: libnginx-mod-http-echo)"
	# Two free ports, held together so that they differ.
	read -r port slow_port < <(perl -MIO::Socket::INET -e '
		my @s = map { IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1) } 1, 2;
		print join(" ", map { $_->sockport } @s), "\n"')
	mkdir -p "$work/nginx-body"
	sed -e "s|@DIR@|$work|g" -e "s|@PORT@|$port|g" -e "s|@SLOWPORT@|$slow_port|g" \
		-e "s|@MODULES@|load_module $echo_module;|" "$here/nginx.conf.in" >"$work/nginx.conf"
	nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log"
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$port/health" && break
		sleep 0.1
	done
	base_url="http://127.0.0.1:$port"
	slow_url="http://127.0.0.1:$slow_port"
	log "nginx $(nginx -v 2>&1 | sed 's|.*/||') on $base_url (and $slow_url, answering after 2 s)"
}

start_cluster() {
	"$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
	cat >>"$data/postgresql.conf" <<-EOF
	listen_addresses = ''
	unix_socket_directories = '$work'
	max_connections = 50
	shared_preload_libraries = 'seriesweb${BENCH_PGSS:+, pg_stat_statements}'
	seriesweb.database = 'bench'
	seriesweb.allowed_networks = '127.0.0.1/32'
	fsync = on
	synchronous_commit = on
	shared_buffers = 1GB
	max_wal_size = 16GB
	checkpoint_timeout = 1h
	log_checkpoints = on
	EOF
	[ -z "${BENCH_PGSS:-}" ] || echo "pg_stat_statements.track = all" >>"$data/postgresql.conf"
	"$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
	psql_db postgres -c "CREATE DATABASE bench" -c "CREATE DATABASE bench_nw"
	[ -z "${BENCH_PGSS:-}" ] || psql_db bench -c "CREATE EXTENSION pg_stat_statements"
	log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') in $data"
}

# The same definitions in both databases: 100 idle live series, 10,000
# known users, "signup" firing one webhook, "mixed" firing a fast and a
# slow one.  bench_nw is not served by the worker: its deliveries wait.
define_series() {
	local db=$1
	psql_db "$db" -v base="$base_url" -v slow="$slow_url" -v body="$body_template" >/dev/null <<-'EOF'
	CREATE EXTENSION seriesweb;
	CREATE SEQUENCE bench_uid;
	-- Live series whose entry rules name events the load never sends.
	SELECT seriesweb.set_live(s) FROM (
		SELECT s, seriesweb.add_webhook(s, 'notify', :'base' || '/never/{user.id}',
										seriesweb.add_rule(s, 'entry', 'ev-' || i))
		  FROM (SELECT i, seriesweb.create_series('idle ' || i) AS s FROM generate_series(1, 100) i) x) y;
	INSERT INTO seriesweb.users (user_id, attributes)
		SELECT 'p' || i, '{"plan": "free"}' FROM generate_series(1, 10000) i;
	SELECT seriesweb.create_series('signup') AS sid \gset
	SELECT seriesweb.add_rule(:sid, 'signed up', 'signup') AS rid \gset
	SELECT seriesweb.add_webhook(:sid, 'fast', :'base' || '/d/{event.run}/{user.id}', :rid,
								 body => :'body') AS fast \gset
	SELECT seriesweb.set_live(:sid);
	SELECT seriesweb.create_series('mixed') AS sid \gset
	SELECT seriesweb.add_rule(:sid, 'mixed', 'mixed') AS rid \gset
	SELECT seriesweb.add_webhook(:sid, 'fast', :'base' || '/d/{event.run}/{user.id}', :rid,
								 body => :'body');
	SELECT seriesweb.add_webhook(:sid, 'slow', :'slow' || '/slow/{event.run}/{user.id}', :rid,
								 body => :'body');
	SELECT seriesweb.set_live(:sid);
	EOF
}

wait_for_worker() {
	for _ in $(seq 150); do
		[ "$(q "SELECT state FROM seriesweb.worker_status()")" = running ] && break
		sleep 0.1
	done
	worker_pid=$(q "SELECT pid FROM seriesweb.worker_status() WHERE state = 'running'")
	[ -n "$worker_pid" ] || die "the seriesweb worker is not running: $(q "SELECT * FROM seriesweb.worker_status()")"
}

# ---------------------------------------------------------------------------
# Helpers for the queue figures
# ---------------------------------------------------------------------------

# Fixed-width ids keep every body the same size: u<tag>-<9 digits>.
write_events() {		# file n tag name [every]: every n-th event fires, the rest are page views
	awk -v n="$2" -v tag="$3" -v name="$4" -v every="${5:-1}" 'BEGIN {
		for (i = 1; i <= n; i++)
			if (i % every == 0)
				printf "u%s-%09d\t%s\t{\"run\": \"%s\"}\n", tag, i, name, tag
			else
				printf "p%d\tpageview\t{\"path\": \"/pricing\"}\n", (i * 7919) % 10000 + 1
	}' >"$1"
}

# After a backend crash the postmaster restarts every process: wait until
# the server accepts connections again and the worker runs.
recover_server() {
	for _ in $(seq 600); do
		"$bindir/pg_isready" -q -h "$work" -U postgres -d bench && break
		sleep 0.1
	done
	wait_for_worker
}

# COPY a file in one transaction; prints the time it took in seconds, or
# nothing (and records a failed check) if the COPY failed.
copy_events() {		# database file
	local out
	if ! out=$(psql_db "$1" -c '\timing on' \
		-c "COPY seriesweb.events (user_id, name, properties) FROM '$2'" 2>&1); then
		check "**COPY into $1 failed**: $(tail -1 <<<"$out")"
		recover_server
		return 0
	fi
	sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' <<<"$out" | tail -1 | awk '{printf "%.3f", $1 / 1000}'
}

# One partial index each (an IN list would scan the whole table).
queue_idle() {
	[ "$(q "SELECT NOT EXISTS (SELECT 1 FROM seriesweb.deliveries WHERE status = 'pending')
	           AND NOT EXISTS (SELECT 1 FROM seriesweb.deliveries WHERE status = 'sending')")" = t ]
}

wait_queue_idle() {
	for _ in $(seq 6000); do
		queue_idle && return 0
		sleep 0.1
	done
	die "deliveries still pending after 10 minutes"
}

# nginx logs a request once it has answered it: wait until the log holds
# every delivery the database counts as sent for the run.
wait_logged() {		# tag offset
	local sent
	sent=$(q "SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sent' AND user_id LIKE 'u$1-%'")
	perl "$here/bench.pl" wait "$nginx_log" "$2" "$sent" 10 >/dev/null
}

# Compare what the database counts as sent for a run with what nginx got.
verify_run() {		# what tag offset [block_id [path_prefix]]
	local what=$1 tag=$2 offset=$3 block=${4:-} where counts sent failed other got arr
	where="user_id LIKE 'u$tag-%'"
	[ -n "$block" ] && where="$where AND block_id = $block"
	counts=$(q "SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
	                   count(*) FILTER (WHERE status NOT IN ('sent', 'failed'))
	              FROM seriesweb.deliveries WHERE $where")
	IFS='|' read -r sent failed other <<<"$counts"
	local prefix=${5:-/d/$tag/}
	[ "$what" = "${what#slow}" ] || prefix=/slow/$tag/
	arr=$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" "$prefix" 0)
	got=$(kv count "$arr")
	if [ "$got" = "$sent" ] && [ "$(kv dups "$arr")" = 0 ] && [ "$failed" = 0 ] && [ "$(kv non200 "$arr")" = 0 ]; then
		check "$what (run $tag): sent $sent = received $got, 0 failed$([ "$other" = 0 ] || echo ", $other left unsent")"
	else
		check "**MISMATCH** $what (run $tag): database sent $sent, failed $failed, unsent $other; nginx received $got ($(kv dups "$arr") repeated, $(kv non200 "$arr") not 200)"
	fi
}

# Send one delivery and pad the body until it arrives with body_bytes.
calibrate_body() {
	local offset len
	for attempt in 1 2 3; do
		offset=$(log_size)
		q "INSERT INTO seriesweb.events (user_id, name, properties)
		   VALUES ('u0000-00000000$attempt', 'signup', '{\"run\": \"0000\"}')"
		perl "$here/bench.pl" wait "$nginx_log" "$offset" 1 30 >/dev/null
		len=$(kv body "$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" /d/0000/ 0)")
		[ -n "$len" ] || die "the calibration delivery did not arrive (see $work/server.log)"
		[ "$len" = "$body_bytes" ] && return 0
		pad_len=$((pad_len + body_bytes - len))
		make_body
		for db in bench bench_nw; do
			psql_db $db -v body="$body_template" <<-'EOF'
			UPDATE seriesweb.blocks SET body = :'body' WHERE kind = 'webhook' AND url NOT LIKE '%/never/%';
			EOF
		done
	done
	die "could not make the webhook body $body_bytes bytes long (last: $len)"
}

# ---------------------------------------------------------------------------
# The figures
# ---------------------------------------------------------------------------

bench_ceiling() {	# run
	cat >"$work/post.lua" <<-EOF
	wrk.method = "POST"
	wrk.body = '$(head -c "$body_bytes" </dev/zero | tr '\0' x)'
	wrk.headers["Content-Type"] = "application/json"
	EOF
	local rps
	rps=$(wrk -t2 -c64 -d"${wrk_s}s" -s "$work/post.lua" "$base_url/wrk" | awk '/^Requests\/sec/ {print $2}')
	result ceiling "$1" "$rps"
	log "nginx ceiling (wrk -t2 -c64, ${body_bytes} B POST): $rps req/s"
}

insert_pair() {		# key db script run [table trigger]
	local key=$1 db=$2 script=$3 run=$4 table=${5:-seriesweb.events} trigger=${6:-match_events} order tps
	if [ $((run % 2)) = 1 ]; then order="base trig"; else order="trig base"; fi
	for variant in $order; do
		next_tag
		psql_db "$db" -c "ALTER TABLE $table $([ $variant = base ] && echo DISABLE || echo ENABLE) TRIGGER $trigger" -c CHECKPOINT
		local offset; offset=$(log_size)
		tps=$(pgbench -c $clients -j 2 -T $insert_s -D tag="$tag" -f "$work/$script" "$db" | awk '/^tps/ {print $3}')
		[ -n "$tps" ] || die "pgbench failed ($script, $db)"
		if [ $variant = base ]; then result "${key}_base" "$run" "$tps"; else result "$key" "$run" "$tps"; fi
		log "$key $variant run $run: $tps TPS"
		if [ $variant = trig ] && [ "$db" = bench ] && [ "$script" = fire.sql ]; then
			wait_queue_idle
			wait_logged "$tag" "$offset"
			verify_run "insert, one webhook per event" "$tag" "$offset"
		fi
	done
	psql_db "$db" -c "ALTER TABLE $table ENABLE TRIGGER $trigger"
}

# A first import into a fresh install, as single-row INSERT statements in
# one transaction (the way a trigger on the application's own table calls
# in), against the same import again: a plan made while seriesweb.users was
# empty must not make the first one quadratic.  Each run in a database of
# its own, created for it.
bench_import() {		# run
	local run=$1 db=import_$1 first second
	psql_db bench -c "CREATE DATABASE $db" >/dev/null
	psql_db "$db" -c "CREATE EXTENSION seriesweb" >/dev/null
	for batch in a b; do
		perl -e 'my ($b, $n) = @ARGV; print "BEGIN;\n";
			print "INSERT INTO seriesweb.events (user_id, name) VALUES (\x27$b$_\x27, \x27imported\x27);\n" for 1 .. $n;
			print "COMMIT;\n"' "$batch" "$import_n" >"$work/import-$batch.sql"
	done
	first=$(now); psql_db "$db" -f "$work/import-a.sql" >/dev/null; first=$(calc "$(now) - $first")
	second=$(now); psql_db "$db" -f "$work/import-b.sql" >/dev/null; second=$(calc "$(now) - $second")
	result import_first_s "$run" "$first"
	result import_second_s "$run" "$second"
	log "import of $import_n single-row INSERTs, run $run: first $first s, second $second s"
	[ "$(psql_db "$db" -Atc "SELECT count(*) FROM seriesweb.users")" = $((2 * import_n)) ] ||
		check "**MISMATCH** import run $run: not every user was created"
	psql_db bench -c "DROP DATABASE $db" >/dev/null
}

# In bench_nw: the worker only sees the deliveries once the COPY commits, so
# it cannot slow the COPY down, and not sending them saves the drain's time.
bench_copy() {		# run
	local run=$1 order s
	if [ $((run % 2)) = 1 ]; then order="base trig"; else order="trig base"; fi
	for variant in $order; do
		next_tag
		write_events "$work/copy.tsv" "$copy_n" "$tag" signup 10
		psql_db bench_nw -c "TRUNCATE seriesweb.events, seriesweb.deliveries" \
			-c "ALTER TABLE seriesweb.events $([ $variant = base ] && echo DISABLE || echo ENABLE) TRIGGER match_events" \
			-c CHECKPOINT
		s=$(copy_events bench_nw "$work/copy.tsv")
		[ -n "$s" ] || continue
		if [ $variant = base ]; then result copy_s_base "$run" "$s"; else result copy_s "$run" "$s"; fi
		log "COPY $copy_n events ($variant) run $run: $s s"
		if [ $variant = trig ]; then
			local n
			n=$(psql_db bench_nw -Atc "SELECT count(*) FROM seriesweb.deliveries WHERE user_id LIKE 'u$tag-%'")
			[ "$n" = $((copy_n / 10)) ] || check "**MISMATCH** COPY, 10% firing (run $tag): $n deliveries queued, $((copy_n / 10)) expected"
		fi
	done
	psql_db bench_nw -c "ALTER TABLE seriesweb.events ENABLE TRIGGER match_events"
}

# Queue n deliveries in one COPY (one transaction) while the worker is idle,
# then time the drain from the commit to the last arrival at nginx.
drain() {		# key n run [rss]
	local key=$1 n=$2 run=$3 rss=${4:-} offset t0 waited arr rate enq
	next_tag
	write_events "$work/queue.tsv" "$n" "$tag" signup
	psql_db bench -c "TRUNCATE seriesweb.events, seriesweb.deliveries, seriesweb.delivery_attempts" \
		-c "VACUUM ANALYZE seriesweb.deliveries" -c CHECKPOINT
	wait_for_worker
	offset=$(log_size)
	enq=$(copy_events bench "$work/queue.tsv")
	t0=$(now)
	if [ -n "$rss" ]; then
		waited=$(perl "$here/bench.pl" wait "$nginx_log" "$offset" "$n" 900 "$worker_pid" 10000)
	else
		waited=$(perl "$here/bench.pl" wait "$nginx_log" "$offset" "$n" 900)
	fi
	arr=$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" "/d/$tag/" "$t0")
	rate=$(kv rate "$arr")
	result "$key" "$run" "$rate"
	log "drain of $n (queued in $enq s): $rate deliveries/s from commit to last arrival; $arr"
	[ -n "$body_seen" ] || body_seen=$(kv body "$arr")
	if [ -n "$rss" ]; then
		local at max anon_at anon_max
		at=$(kv VmRSS_at "$waited"); max=$(kv VmRSS_max "$waited")
		anon_at=$(kv RssAnon_at "$waited"); anon_max=$(kv RssAnon_max "$waited")
		if [ -n "$at" ] && [ -n "$max" ]; then
			result rss_at_mb "$run" "$(calc "$at / 1024" 1)"
			result rss_growth_mb "$run" "$(calc "($max - $at) / 1024" 1)"
			result anon_at_mb "$run" "$(calc "$anon_at / 1024" 1)"
			result anon_growth_mb "$run" "$(calc "($anon_max - $anon_at) / 1024" 1)"
		fi
		log "worker memory (kB): $waited"
		[ "$(q "SELECT pid FROM seriesweb.worker_status()")" = "$worker_pid" ] ||
			check "**the worker restarted** during the $n drain (pid $worker_pid)"
	fi
	wait_queue_idle
	wait_logged "$tag" "$offset"
	verify_run "drain of $n" "$tag" "$offset"
}

# Latency is taken from the commit's acknowledgement, as pgbench logged it
# (-l), to nginx's $msec; lat.sql's user ids say which client sent each.
bench_latency() {	# run
	local run=$1 offset lat
	next_tag
	offset=$(log_size)
	rm -f "$work"/lat_log*
	(cd "$work" && pgbench -c 4 -j 2 -R 200 -T "$lat_s" -l --log-prefix=lat_log -D tag="$tag" \
		-f "$work/lat.sql" bench >/dev/null)
	wait_queue_idle
	wait_logged "$tag" "$offset"
	q "SELECT user_id || '|' || extract(epoch FROM occurred_at) FROM seriesweb.events
	    WHERE user_id LIKE 'u$tag-%'" >"$work/lat-times.txt"
	lat=$(perl "$here/bench.pl" latency "$nginx_log" "$offset" "/d/$tag/" "$work/lat-times.txt" "$work"/lat_log*)
	result lat_p50 "$run" "$(kv p50 "$lat")"
	result lat_p99 "$run" "$(kv p99 "$lat")"
	result lat_insert_p50 "$run" "$(kv insert_p50 "$lat")"
	result lat_insert_p99 "$run" "$(kv insert_p99 "$lat")"
	log "latency run $run at 200/s: $lat"
	[ "$(kv unmatched "$lat")" = 0 ] || check "**latency run $tag**: $(kv unmatched "$lat") events not matched to pgbench's log"
	verify_run "latency at 200 events/s" "$tag" "$offset"
}

# The fast endpoint's throughput, alone and while every other delivery goes
# to an endpoint that answers after 2 s.  The mixed run is cut off after
# slow_window seconds: its rate is what arrived by then.
bench_slow() {		# run
	local run=$1 order offset t0 arr rate n
	if [ $((run % 2)) = 1 ]; then order="base mixed"; else order="mixed base"; fi
	for variant in $order; do
		next_tag
		if [ $variant = base ]; then
			write_events "$work/slow.tsv" "$slow_n" "$tag" signup
		else
			write_events "$work/slow.tsv" "$slow_n" "$tag" mixed
		fi
		wait_queue_idle
		offset=$(log_size)
		copy_events bench "$work/slow.tsv" >/dev/null
		t0=$(now)
		if [ $variant = base ]; then
			perl "$here/bench.pl" wait "$nginx_log" "$offset" "$slow_n" 300 >/dev/null
			arr=$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" "/d/$tag/" "$t0")
			rate=$(kv rate "$arr")
			result slow_base_rate "$run" "$rate"
		else
			perl "$here/bench.pl" wait "$nginx_log" "$offset" $((2 * slow_n)) "$slow_window" >/dev/null
			arr=$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" "/d/$tag/" "$t0" "$(calc "$t0 + $slow_window")")
			n=$(kv by_deadline "$arr")
			if [ "$n" = "$slow_n" ]; then rate=$(kv rate "$arr"); else rate=$(calc "$n / $slow_window" 1); fi
			result slow_fast_rate "$run" "$rate"
			# Cut the run short: what is still queued is not sent.
			n=$(q "WITH d AS (DELETE FROM seriesweb.deliveries WHERE status = 'pending' AND user_id LIKE 'u$tag-%' RETURNING 1)
			       SELECT count(*) FROM d")
			log "mixed run: $n queued deliveries dropped after ${slow_window}s"
		fi
		log "fast endpoint ($variant) run $run: $rate/s; $arr"
		wait_queue_idle
		wait_logged "$tag" "$offset"
		if [ $variant = base ]; then
			verify_run "fast endpoint alone" "$tag" "$offset"
		else
			verify_run "fast endpoint, mixed" "$tag" "$offset" "$fast_mixed_block"
			verify_run "slow endpoint, mixed" "$tag" "$offset" "$slow_mixed_block"
		fi
	done
}

# The series the release figure waits in: rule "waitsignup" -> a wait of
# release_wait_s -> a webhook to nginx at /w/<user>.  After a wait there is
# no event, so the body takes the run from a fallback ("wait"): it renders
# to the same size as the other webhooks'.  Sets release_wait_block and
# release_hook_block.
define_release_series() {
	local body ids
	body=$(perl -pe 's/\{event\.run\}/{event.run | fallback: \\"wait\\"}/' <<<"$body_template")
	ids=$(psql_db bench -At -v base="$base_url" -v body="$body" -v wait="$release_wait_s seconds" <<-'EOF'
	SELECT seriesweb.create_series('release') AS sid \gset
	SELECT seriesweb.add_rule(:sid, 'waits', 'waitsignup') AS rid \gset
	SELECT seriesweb.add_wait(:sid, 'a short wait', :rid, :'wait') AS wid \gset
	SELECT seriesweb.add_webhook(:sid, 'after the wait', :'base' || '/w/{user.id}', :wid,
								 body => :'body') AS hid \gset
	SELECT seriesweb.set_live(:sid) \gset
	SELECT :wid || ' ' || :hid;
	EOF
	)
	read -r release_wait_block release_hook_block <<<"$ids"
}

# release_n new users reach the wait in one COPY (one statement, so one
# now() and one due_at for all) while the worker is idle; time from the
# due time, read from seriesweb.timers before it comes, to the last arrival
# at nginx.  The deliveries' created_at is the now() of the release
# transaction that enqueued them: when the worker released the first and
# the last batch of users, to tell releasing from sending.
release() {		# run
	local run=$1 offset enq committed timers n distinct due early arr rate txs first last
	next_tag
	write_events "$work/release.tsv" "$release_n" "$tag" waitsignup
	psql_db bench -c "TRUNCATE seriesweb.events, seriesweb.deliveries, seriesweb.delivery_attempts" \
		-c "VACUUM ANALYZE seriesweb.deliveries, seriesweb.timers" -c CHECKPOINT
	wait_for_worker
	offset=$(log_size)
	enq=$(copy_events bench "$work/release.tsv")
	[ -n "$enq" ] || return 0
	committed=$(now)
	timers=$(q "SELECT count(*), count(DISTINCT due_at), extract(epoch FROM min(due_at)),
	                   min(due_at) > clock_timestamp()
	              FROM seriesweb.timers WHERE block_id = $release_wait_block AND user_id LIKE 'u$tag-%'")
	IFS='|' read -r n distinct due early <<<"$timers"
	if [ "$n" != "$release_n" ] || [ "$distinct" != 1 ] || [ "$early" != t ]; then
		check "**release run $tag**: at the commit $n of $release_n users were waiting, with $distinct due times, read before the due time: $early (the ${release_wait_s} s wait must outlast the COPY)"
	fi
	perl "$here/bench.pl" wait "$nginx_log" "$offset" "$release_n" 900 >/dev/null
	# Deadline: when the last release transaction started (below), to count
	# what was sent while the worker was still releasing.
	txs=$(q "SELECT count(DISTINCT created_at), round((extract(epoch FROM min(created_at)) - $due)::numeric, 3),
	                round((extract(epoch FROM max(created_at)) - $due)::numeric, 3)
	           FROM seriesweb.deliveries WHERE block_id = $release_hook_block AND user_id LIKE 'u$tag-%'")
	IFS='|' read -r n first last <<<"$txs"
	arr=$(perl "$here/bench.pl" arrivals "$nginx_log" "$offset" "/w/u$tag-" "$due" "$(calc "$due + $last")")
	rate=$(kv rate "$arr")
	result release_rate "$run" "$rate"
	result release_p50_s "$run" "$(kv t0_p50 "$arr")"
	result release_p99_s "$run" "$(kv t0_p99 "$arr")"
	result release_txs "$run" "$n"
	result release_first_tx_s "$run" "$first"
	result release_last_tx_s "$run" "$last"
	result release_sent_by_last_tx "$run" "$(kv by_deadline "$arr")"
	log "release of $release_n (COPY $enq s, committed $(calc "$due - $committed") s before the due time): $rate deliveries/s from the due time to the last arrival; release transactions: $n, the first at +$first s, the last at +$last s; $arr"
	[ "$(kv body "$arr")" = "${body_seen:-$body_bytes}" ] ||
		check "**release run $tag**: bodies of $(kv body "$arr") B, not ${body_seen:-$body_bytes} B like the other figures'"
	wait_queue_idle
	wait_logged "$tag" "$offset"
	verify_run "release of $release_n from one wait" "$tag" "$offset" "$release_hook_block" "/w/u$tag-"
	n=$(q "SELECT count(*) FROM seriesweb.timers WHERE block_id = $release_wait_block")
	[ "$n" = 0 ] || check "**release run $tag**: $n users still waiting after the run"
}

# The worker's CPU time so far (user + system), in seconds.
worker_cpu_s() {
	awk -v hz="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / hz}' "/proc/$worker_pid/stat"
}

# The release next to a plain drain of as many deliveries (ABBA), each with
# the CPU time the worker spent on it (it is idle before and after).
bench_release() {	# run
	local variant cpu
	for variant in $([ $(($1 % 2)) = 1 ] && echo "drain release" || echo "release drain"); do
		wait_for_worker
		cpu=$(worker_cpu_s)
		if [ $variant = drain ]; then drain release_drain_rate "$release_n" "$1"; else release "$1"; fi
		result "${variant}_worker_cpu_s" "$1" "$(calc "$(worker_cpu_s) - $cpu" 2)"
	done
}

# Two databases, the same but for users waiting: each gets the definitions
# of bench and a series "held" (rule "hold" -> wait 1 day -> webhook), then
# the same statement inserting a "hold" event for users p1 ... p<held_n>
# (every user of nomatch.sql among them).  In bench_held the series is live
# then, so they all wait, for the rest of the benchmark; in bench_free it is
# still a draft then (the events match nothing, the users are created all
# the same) and is set live after.  The worker serves neither: nothing in
# them falls due.
setup_waiting() {
	local db state
	for db in bench_held bench_free; do
		psql_db postgres -c "CREATE DATABASE $db"
		define_series $db
		psql_db $db -v base="$base_url" -v n="$held_n" -v live="$([ $db = bench_held ] && echo true || echo false)" <<-'EOF' >/dev/null
		SELECT seriesweb.create_series('held') AS sid \gset
		SELECT seriesweb.add_rule(:sid, 'hold', 'hold') AS rid \gset
		SELECT seriesweb.add_wait(:sid, 'a day', :rid, '1 day') AS wid \gset
		SELECT seriesweb.add_webhook(:sid, 'after a day', :'base' || '/held/{user.id}', :wid);
		\if :live
		SELECT seriesweb.set_live(:sid);
		\endif
		INSERT INTO seriesweb.events (user_id, name, properties)
			SELECT 'p' || i, 'hold', '{}' FROM generate_series(1, :n) i;
		SELECT seriesweb.set_live(:sid);
		VACUUM ANALYZE;
		EOF
		state=$(psql_db $db -Atc "SELECT (SELECT count(*) FROM seriesweb.timers) || ' waiting, ' ||
		                                 (SELECT count(*) FROM seriesweb.users) || ' users'")
		log "$db: $state"
		if [ $db = bench_held ]; then
			[ "${state%% *}" = "$held_n" ] || check "**bench_held**: $state, $held_n waiting expected"
		else
			[ "${state%% *}" = 0 ] || check "**bench_free**: $state, none waiting expected"
		fi
	done
}

bench_nomatch_waiting() {	# run
	local run=$1 order tps db
	if [ $((run % 2)) = 1 ]; then order="bench_free bench_held"; else order="bench_held bench_free"; fi
	for db in $order; do
		psql_db $db -c CHECKPOINT
		tps=$(pgbench -c $clients -j 2 -T $insert_s -f "$work/nomatch.sql" "$db" | awk '/^tps/ {print $3}')
		[ -n "$tps" ] || die "pgbench failed (nomatch.sql, $db)"
		if [ $db = bench_free ]; then result nomatch_waiting_tps_base "$run" "$tps"; else result nomatch_waiting_tps "$run" "$tps"; fi
		log "nomatch in $db run $run: $tps TPS"
	done
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

log "$mode run in $work"
start_nginx
start_cluster

# The webhook body: a JSON object padded to body_bytes once rendered (ids
# are fixed-width); calibrate_body checks it against nginx's $content_length.
pad_len=$((body_bytes - 80))
make_body() {
	body_template='{"type": "user.signup", "user": "{user.id}", "run": "{event.run}", "pad": "'$(head -c $pad_len </dev/zero | tr '\0' x)'"}'
}
make_body
define_series bench
define_series bench_nw
fast_mixed_block=$(q "SELECT block_id FROM seriesweb.blocks b JOIN seriesweb.series s USING (series_id) WHERE s.name = 'mixed' AND b.title = 'fast'")
slow_mixed_block=$(q "SELECT block_id FROM seriesweb.blocks b JOIN seriesweb.series s USING (series_id) WHERE s.name = 'mixed' AND b.title = 'slow'")
wait_for_worker
first_worker_pid=$worker_pid
calibrate_body
body_seen=""

cat >"$work/nomatch.sql" <<-'EOF'
\set u random(1, 10000)
INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('p' || :u, 'pageview', '{"path": "/pricing"}');
EOF
# The same events written to the application's own table, watched.
psql_db bench -c "CREATE TABLE app_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id text NOT NULL, name text NOT NULL, properties jsonb NOT NULL DEFAULT '{}',
	occurred_at timestamptz NOT NULL DEFAULT now())" \
	-c "SELECT seriesweb.watch('app_events', 'user_id', name_column => 'name',
		properties_column => 'properties', occurred_at_column => 'occurred_at')" >/dev/null
cat >"$work/watched.sql" <<-'EOF'
\set u random(1, 10000)
INSERT INTO app_events (user_id, name, properties) VALUES ('p' || :u, 'pageview', '{"path": "/pricing"}');
EOF
cat >"$work/fire.sql" <<-'EOF'
INSERT INTO seriesweb.events (user_id, name, properties)
VALUES ('u' || :tag || '-' || lpad(nextval('bench_uid')::text, 9, '0'), 'signup', jsonb_build_object('run', :tag::text));
EOF
# One event per transaction; the user id carries the pgbench client (2
# digits) before a sequence (7 digits), and occurred_at is clock_timestamp()
# in the INSERT, just before the commit.
cat >"$work/lat.sql" <<-'EOF'
INSERT INTO seriesweb.events (user_id, name, properties, occurred_at)
VALUES ('u' || :tag || '-' || lpad(:client_id::text, 2, '0') || lpad(nextval('bench_uid')::text, 7, '0'), 'signup', jsonb_build_object('run', :tag::text), clock_timestamp());
EOF

has() { [ "${only/ $1 /}" != "$only" ]; }

if has ceiling; then
	for run in $(seq $runs); do bench_ceiling "$run"; done
fi
if has nomatch; then
	for run in $(seq $insert_runs); do insert_pair nomatch_tps bench nomatch.sql "$run"; done
fi
if has nomatch_waiting; then
	setup_waiting
	for run in $(seq $insert_runs); do bench_nomatch_waiting "$run"; done
fi
if has watched; then
	for run in $(seq $insert_runs); do insert_pair watched_tps bench watched.sql "$run" app_events seriesweb_watch; done
fi
if has fire; then
	for run in $(seq $insert_runs); do insert_pair fire_tps bench fire.sql "$run"; done
fi
if has fire_nw; then
	for run in $(seq $insert_runs); do insert_pair fire_nw_tps bench_nw fire.sql "$run"; done
fi
if has copy; then
	for run in $(seq $runs); do bench_copy "$run"; done
fi
if has import; then
	for run in $(seq $runs); do bench_import "$run"; done
fi
if has queue; then
	for run in $(seq $runs); do
		drain drain1_rate "$q1_n" "$run"
		drain drain2_rate "$q2_n" "$run" rss
	done
fi
if has release; then
	define_release_series
	for run in $(seq $runs); do bench_release "$run"; done
fi
if has latency; then
	for run in $(seq $runs); do bench_latency "$run"; done
fi
if has slow; then
	for run in $(seq $runs); do bench_slow "$run"; done
fi

wait_for_worker
[ "$worker_pid" = "$first_worker_pid" ] || check "**the worker restarted** during the benchmark (pid $first_worker_pid, now $worker_pid)"
crashes=$(grep -c 'terminated by signal' "$work/server.log" || true)
if [ "$crashes" -gt 0 ]; then
	check "**a server process crashed $crashes time(s)**; the first: $(grep -A1 'terminated by signal' "$work/server.log" | head -2 | sed 's/^[^]]*] //' | tr '\n' ' ')"
fi

# ---------------------------------------------------------------------------
# The report
# ---------------------------------------------------------------------------

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
meta() { result meta "$1" "$2"; }
meta command "make bench${quick:+ QUICK=1}"
meta mode "$mode"
meta date "$(date -u '+%Y-%m-%d %H:%M UTC')"
meta revision "${BENCH_REVISION:-unknown revision}"
meta machine "$(nproc) CPUs ($cpu), $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)"
meta pg "$("$bindir/postgres" --version | awk '{print $3}')"
meta nginx "$(nginx -v 2>&1 | sed 's|.*/||') (1 worker, return 200, keep-alive)"
meta curl "$(curl --version | awk 'NR == 1 {print $2}')"
meta pgconf "shared_buffers=1GB, max_wal_size=16GB, seriesweb.max_concurrency=$(q 'SHOW seriesweb.max_concurrency') (default), checkpoint before each timed run"
thousands() { perl -e '$_ = shift; 1 while s/^(\d+)(\d{3})/$1,$2/; print' "$1"; }
meta copy_n "$(thousands "$copy_n")"
meta q1_n "$(thousands "$q1_n")"
meta q2_n "$(thousands "$q2_n")"
meta release_n "$(thousands "$release_n")"
meta held_n "$(thousands "$held_n")"
meta body "${body_seen:-$body_bytes}"
contention="load average $load_at_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end"
if [ -n "$stall_at_start" ]; then
	contention="$contention; some task was waiting for a CPU $(calc "($(cpu_stall_us) - $stall_at_start) / 1e4 / ($(date +%s) - $started)" 0)% of the time (/proc/pressure/cpu)"
fi
meta contention "$contention"

cat >"$work/method.md" <<EOF
## How each figure is measured

Sizes in this ($mode) run: inserts ${insert_s} s per pgbench run with $clients clients (-M prepared), $insert_runs
runs per variant; COPY of $copy_n events; drains of $q1_n and $q2_n deliveries; latency over ${lat_s} s at 200
events/s; the slow-endpoint run queues $slow_n events that each fire a fast and a slow webhook and is cut off
after ${slow_window} s. The baseline and measured variants alternate (ABBA), with a CHECKPOINT before each timed run.

- **Definitions.** 100 live series whose entry rules name events the load never sends (\`ev-1\` ... \`ev-100\`),
  10,000 known users (\`p1\` ... \`p10000\`), series \`signup\` (rule on \`signup\` -> one webhook to nginx) and
  series \`mixed\` (rule on \`mixed\` -> a webhook to the fast endpoint and one to a second nginx server on
  another port, so another destination, which answers after 2 s). Every webhook body renders to ${body_seen:-$body_bytes} bytes of JSON (nginx's \`\$content_length\`).
- **Insert TPS.** pgbench, one single-row INSERT per transaction. *No rule*: \`pageview\` events of known
  users. *Fires*: \`signup\` events of a new user each (so the trigger also creates the user). Baseline: the
  same script with \`ALTER TABLE seriesweb.events DISABLE TRIGGER match_events\`. The headline *fires* figure
  runs in the database the worker serves, so the worker sends the deliveries to nginx meanwhile (on the same 2
  CPUs); the *trigger only* row runs the same in a second database the worker does not serve.
- **COPY.** Server-side COPY of a file into an emptied \`seriesweb.events\`, one transaction, timed by psql;
  every tenth event is a \`signup\` of a new user. Baseline: the same file with the trigger disabled. It runs
  in the database the worker does not serve: the worker sees nothing before the commit anyway, and the run
  need not wait for the deliveries to be sent (the queue checks below cover sending).
- **Delivery throughput.** The events are COPYed in one transaction while the worker is idle, so the whole
  queue becomes visible at once and the drain is measured alone: deliveries counted by nginx divided by the time
  from the commit to the last arrival. Baseline: nginx's ceiling, \`wrk -t2 -c64\` POSTing the same body size
  to the same server (logging too). Queue tables are emptied and vacuumed before each drain; the 100k and 1M
  runs alternate.
- **Insert TPS with users waiting.** The *no rule* script again, in two databases made alike for it (the
  definitions above plus a series \`held\`: rule on \`hold\` -> wait 1 day -> webhook), each given the same
  single INSERT of a \`hold\` event for users \`p1\` ... \`p$held_n\` (so every user the script sends events of
  is among them). In the measured database the series was live then, so $held_n users are held in the wait
  (rows in \`seriesweb.timers\`) for the whole benchmark; in the baseline it was still a draft, so the same
  events matched nothing (the same users were created), and it was set live after: same definitions, users
  and events, nobody waiting. The runs alternate between the two databases (ABBA), a CHECKPOINT before each.
  Neither alternative within one database is sound: pausing the series keeps its timers, and deleting and
  restoring $held_n timer rows between runs leaves dead rows in one variant only.
- **Release from a wait.** Series \`release\`: rule on \`waitsignup\` -> wait ${release_wait_s} s -> webhook to
  nginx (the same body; the run comes from a fallback, as there is no event after a wait). One COPY of
  $release_n \`waitsignup\` events of new users, while the worker is idle, puts them all in the wait with
  the same due time (the statement's \`now()\` + ${release_wait_s} s), read from \`seriesweb.timers\` before it
  comes. Rate: deliveries counted by nginx divided by the time from the due time to the last arrival;
  p50/p99: each arrival's time after the due time. Baseline: a plain drain of $release_n queued deliveries
  (as *Delivery throughput*), next to each release run (ABBA). The raw values add the number of release
  transactions, when the first and the last started after the due time (the deliveries' \`created_at\`) and
  how many deliveries had arrived by then, and the CPU time the worker spent on the release run and on the
  drain next to it: the release's share of the time from the sending's (one worker, one thread does both).
- **Latency.** pgbench \`-R 200\` (Poisson arrivals), 4 clients, one event per autocommit INSERT. The commit
  time is when pgbench got the commit acknowledged (its per-transaction log, \`-l\`, microseconds; each
  client's k-th event is its k-th transaction); receipt is nginx's \`\$msec\` (milliseconds, so a value may be
  up to 1 ms low). Percentiles are nearest-rank over all events of a run. The raw values also give the same
  from \`occurred_at = clock_timestamp()\` in the INSERT (\`lat_insert_*\`), which adds the trigger and the
  commit's own WAL flush.
- **Slow endpoint.** The fast endpoint's rate from the commit to its last arrival, or, in the mixed run, what
  arrived within ${slow_window} s divided by ${slow_window} s; what is still queued then is deleted.
- **RSS.** VmRSS of the worker (\`/proc/<pid>/status\`, pid from \`seriesweb.worker_status()\`), sampled every
  100 ms during the $q2_n drains: growth = largest sample minus the first sample after 10,000 arrivals. VmRSS
  also counts every page of shared_buffers the worker has touched (RssShmem), which grows with the queue table
  up to shared_buffers without being a leak, so the worker's private memory (RssAnon) is given too.
- **Settings left at their defaults** unless listed above: work_mem is 4MB, so the trigger's transition table
  spills to disk in the large COPYs, as it would for a user.
EOF

perl "$here/bench.pl" report "$results" "$report" "$work/method.md"
log "report written to $report"
cat "$report"
