#!/bin/bash
# demo.sh — the README's tour, live: a throwaway PostgreSQL cluster with
# seriesweb preloaded, the test receiver on 127.0.0.1; the seed series and an
# event, a watched application table, and a journey in time (a wait, a
# deadline and its not-matched path, in seconds); then it prints what the
# receiver got, seriesweb.block_stats and a series' diagram (drawn to
# seriesweb-demo.png when Graphviz is installed), and removes everything else.  Run by `make
# demo` as an unprivileged user (PostgreSQL refuses root).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bindir=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
work=$(mktemp -d /tmp/seriesweb-demo.XXXXXX)
data=$work/data
receiver_pid=""

cleanup() {
	"$bindir/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true
	[ -n "$receiver_pid" ] && kill "$receiver_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Wait until "$@" succeeds, at most 30 s.
wait_for() {
	for _ in $(seq 300); do
		"$@" && return 0
		sleep 0.1
	done
	echo "demo: timed out waiting for: $*" >&2
	return 1
}

step "Starting a receiver on 127.0.0.1"
perl "$here/receiver.pl" --port 0 --port-file "$work/port" --log "$work/received.jsonl" &
receiver_pid=$!
wait_for test -s "$work/port"
port=$(cat "$work/port")
echo "listening on http://127.0.0.1:$port"

step "Starting a throwaway PostgreSQL with seriesweb preloaded"
"$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$work'
shared_preload_libraries = 'seriesweb'
seriesweb.database = 'app'
# The demo's receiver is on loopback, which seriesweb refuses by default.
seriesweb.allowed_networks = '127.0.0.1/32'
EOF
"$bindir/pg_ctl" -D "$data" -l "$work/server.log" -w start >/dev/null
psql() { "$bindir/psql" -X -q -h "$work" -U postgres "$@"; }
psql -d postgres -c "CREATE DATABASE app"
# Show a script, then run it in the database app.
play() { sed 's/^/  /' "$1"; psql -d app -v ON_ERROR_STOP=1 -f "$1" >/dev/null; }
# Has webhook block $1 had its one delivery sent?
one_sent() { [ "$(psql -d app -Atc "SELECT sent FROM seriesweb.block_stats WHERE block_id = $1")" = "1" ]; }

step "The seed scenario (the URL points at the local receiver)"
cat >"$work/seed.sql" <<EOF
CREATE EXTENSION seriesweb;
INSERT INTO seriesweb.companies VALUES ('c0m5en5e', 'CSense Ltd');
INSERT INTO seriesweb.users (user_id, email, name, company_id) VALUES ('u1', 'lonnie@example.com', 'Lonnie Lynn', 'c0m5en5e');
SELECT seriesweb.create_series('Onboarding');
SELECT seriesweb.add_rule(1, 'Completed onboarding', event_name => 'completed-onboarding');
SELECT seriesweb.add_webhook(1, 'Tell the CRM', url => 'http://127.0.0.1:$port/hooks', after => 1,
       headers => '{"Content-Type": "application/json", "Authorization": "Bearer t0ken"}',
       body => '{"name": "{user.name}", "company": "{company.name}", "company_id": "{company.id}"}');
SELECT seriesweb.set_live(1);
INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'completed-onboarding');
EOF
play "$work/seed.sql"
wait_for one_sent 2

step "What the receiver got"
perl -MJSON::PP -ne '
	my $r = decode_json($_);
	print "$r->{method} $r->{path}\n";
	print "$_->[0]: $_->[1]\n" for @{ $r->{headers} };
	print "\n$r->{body}\n";' "$work/received.jsonl"

step "An application's own table: seriesweb.watch() (no write to seriesweb.events)"
cat >"$work/orders.sql" <<EOF
CREATE TABLE orders (order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer text NOT NULL, total numeric NOT NULL, placed_at timestamptz DEFAULT now());
SELECT seriesweb.watch('orders', 'customer', event_name => 'order-placed', occurred_at_column => 'placed_at');
SELECT seriesweb.create_series('Big orders');
SELECT seriesweb.add_rule(2, 'Order of 100 or more', 'order-placed',
       '[{"attribute": "event.total", "op": "gte", "value": 100}]');
SELECT seriesweb.add_webhook(2, 'Tell the shop', 'http://127.0.0.1:$port/orders', after => 3,
       body => '{"customer": "{user.id}", "order": "{event.order_id}", "total": "{event.total}"}');
SELECT seriesweb.set_live(2);
INSERT INTO orders (customer, total) VALUES ('u1', 250), ('u2', 20);
EOF
play "$work/orders.sql"
wait_for one_sent 4
echo "The receiver got (the order of 20 matched no rule):"
perl -MJSON::PP -ne '
	my $r = decode_json($_);
	print "$r->{method} $r->{path}  $r->{body}\n" if $r->{path} eq "/orders";' "$work/received.jsonl"

step "Series in time: a wait, a deadline and its not-matched path (seconds, not days)"
cat >"$work/activation.sql" <<EOF
SELECT seriesweb.create_series('Activation');
SELECT seriesweb.add_rule(3, 'Signed up', 'signup');
SELECT seriesweb.add_wait(3, 'Two seconds', after => 5, duration => '2 seconds');
SELECT seriesweb.add_rule(3, 'Created a project', 'project-created', after => 6,
       match_within => '3 seconds');
SELECT seriesweb.add_webhook(3, 'Tell Slack', 'http://127.0.0.1:$port/slack', after => 7,
       body => '{"text": "{user.id} created a project"}');
SELECT seriesweb.add_webhook(3, 'Tell the CRM', 'http://127.0.0.1:$port/crm', after => 7,
       path => 'not_matched', body => '{"user": "{user.id}", "stage": "stuck"}');
SELECT seriesweb.set_live(3);
INSERT INTO seriesweb.events (user_id, name) VALUES ('ann', 'signup'), ('ben', 'signup');
EOF
play "$work/activation.sql"
# Has the wait released both users onto the timed rule?
both_armed() { [ "$(psql -d app -Atc "SELECT waiting FROM seriesweb.block_stats WHERE block_id = 7")" = "2" ]; }
wait_for both_armed
echo "  -- two seconds later both wait on 'Created a project'; ann creates one in time:"
cat >"$work/project.sql" <<EOF
INSERT INTO seriesweb.events (user_id, name) VALUES ('ann', 'project-created');
EOF
play "$work/project.sql"
wait_for one_sent 8
wait_for one_sent 9
echo "The receiver got (ben's deadline passed three seconds after the wait):"
perl -MJSON::PP -ne '
	my $r = decode_json($_);
	print "$r->{method} $r->{path}  $r->{body}\n" if $r->{path} =~ m{^/(slack|crm)$};' "$work/received.jsonl"

step "seriesweb.block_stats"
psql -d app -c "SELECT series_name, block_id, title, kind, reached, sent, failed, pending, waiting, not_matched
                  FROM seriesweb.block_stats ORDER BY block_id"

step "A series as a diagram: seriesweb.series_diagram(3) (mermaid)"
psql -d app -Atc "SELECT seriesweb.series_diagram(3)"
if command -v dot >/dev/null 2>&1; then
	# In the directory make ran from, which the cleanup leaves alone.
	png=$PWD/seriesweb-demo.png
	psql -d app -Atc "SELECT seriesweb.series_diagram(3, 'dot')" | dot -Tpng -o "$png"
	echo "and drawn by Graphviz: $png"
else
	echo "(with Graphviz installed, the demo also draws it: series_diagram(3, 'dot') | dot -Tpng)"
fi

step "seriesweb.worker_status()"
psql -d app -c "SELECT state, database, in_flight FROM seriesweb.worker_status()"
echo "The demo cleans up after itself."
