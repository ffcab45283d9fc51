#
# 120_databases.pl - every database that has the extension is served by its
# own worker, started by the launcher within seconds of CREATE EXTENSION
# (no restart) and stopped by DROP EXTENSION; DROP DATABASE and RENAME of a
# served database work without FORCE; seriesweb.database narrows the set;
# when no background worker slot is free, worker_status says which setting
# to raise.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('databases', conf => "seriesweb.database = ''\n");

sub sql { my ($db, $q) = @_; return $node->safe_psql($db, $q) }
sub state_of { my ($db) = @_; return sql($db, "SELECT state FROM seriesweb.worker_status()") }
sub wait_in
{
	my ($db, $q, $want, $what) = @_;
	$node->poll_query_until($db, $q, $want) or die "timed out waiting for $what";
}

# A live series in a database: rule on event "go", webhook to /<db>.
sub series_in
{
	my ($db) = @_;
	my $url = $recv->url("/$db");
	set_route($recv, "/$db", { status => 200 });
	sql($db, "SELECT seriesweb.create_series('s');
	          SELECT seriesweb.add_rule(1, 'r', 'go');
	          SELECT seriesweb.add_webhook(1, 'w', '$url', after => 1);
	          SELECT seriesweb.set_live(1);");
}

# --- Two databases, each served by its own worker ----------------------------
sql('postgres', 'CREATE DATABASE app1');
sql('postgres', 'CREATE DATABASE app2');
my $started = time;
sql('app1', 'CREATE EXTENSION seriesweb');
series_in('app1');
sql('app1', "INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'go')");
wait_for_requests($recv, '/app1', 1, 60);
note(sprintf('CREATE EXTENSION to the first delivery in a new database: %.0f ms', 1000 * (time - $started)));
is(request_count($recv, '/app1'), 1, 'a new database is served without a restart');

sql('app2', 'CREATE EXTENSION seriesweb');
series_in('app2');
sql('app2', "INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i::text, 'go' FROM generate_series(1, 5) i");
wait_in('app2', "SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sent'", '5', 'app2 to be served');
is(state_of('app1') . ' ' . state_of('app2'), 'running running', 'both workers run');
my $pid1 = sql('app1', 'SELECT pid FROM seriesweb.worker_status()');
my $pid2 = sql('app2', 'SELECT pid FROM seriesweb.worker_status()');
isnt($pid1, $pid2, 'one worker per database');
is(sql('app1', "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'seriesweb worker'"), '2',
	'no worker for the databases without the extension');

# workers(): every worker of the server, for superusers and pg_monitor.
is(sql('app1', "SELECT string_agg(coalesce(database, '-') || ':' || state, ' ' ORDER BY database NULLS FIRST)
                  FROM seriesweb.workers()"), '-:launcher app1:running app2:running', 'workers() lists them');
sql('app1', 'CREATE ROLE watcher LOGIN; CREATE ROLE nobody LOGIN; GRANT pg_monitor TO watcher;');
is($node->safe_psql('app1', 'SELECT count(*) FROM seriesweb.workers()', extra_params => ['-U', 'watcher']),
	'3', 'pg_monitor may list the workers');
my ($rc, $out, $err) = $node->psql('app1', 'SELECT * FROM seriesweb.workers()', extra_params => ['-U', 'nobody']);
like($err, qr/permission denied/, 'others may not');

# --- DROP EXTENSION stops the worker; CREATE EXTENSION starts one again --------
sql('app2', 'DROP EXTENSION seriesweb');
wait_in('app1', "SELECT count(*) FROM seriesweb.workers() WHERE database = 'app2'", '0',
	'the worker of app2 to stop');
sql('app1', "INSERT INTO seriesweb.events (user_id, name) VALUES ('u2', 'go')");
wait_for_requests($recv, '/app1', 2, 60);
is(request_count($recv, '/app1'), 2, 'app1 is served meanwhile');
sql('app2', 'CREATE EXTENSION seriesweb');
series_in('app2');
sql('app2', "INSERT INTO seriesweb.events (user_id, name) VALUES ('again', 'go')");
wait_in('app2', "SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sent'", '1',
	'app2 to be served again');
pass('CREATE EXTENSION again is served again');

# --- DROP DATABASE and RENAME without FORCE -------------------------------------
my $offset = -s $node->logfile;
sql('postgres', 'DROP DATABASE app2');
is(sql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'app2'"), '0',
	'DROP DATABASE of a served database, without FORCE');
sql('postgres', 'ALTER DATABASE app1 RENAME TO app1b');
wait_in('app1b', "SELECT state FROM seriesweb.worker_status()", 'running', 'the renamed database to be served');
sql('app1b', "INSERT INTO seriesweb.events (user_id, name) VALUES ('u3', 'go')");
wait_for_requests($recv, '/app1', 3, 60);
is(request_count($recv, '/app1'), 3, 'a renamed database is served again');
is(sql('app1b', "SELECT string_agg(coalesce(database, '-'), ' ' ORDER BY database NULLS FIRST)
                   FROM seriesweb.workers()"), '- app1b', 'no worker is left for the dropped database');
my $log = substr(slurp_file($node->logfile), $offset);
unlike($log, qr/FATAL/, 'no FATAL in the log');

# --- seriesweb.database narrows the databases served ------------------------------
my $narrow = new_node('narrow', conf => "seriesweb.database = 'served, missing'\n");
$narrow->safe_psql('postgres', 'CREATE DATABASE served; CREATE DATABASE other;');
$narrow->safe_psql($_, 'CREATE EXTENSION seriesweb') for qw(served other);
$narrow->poll_query_until('served', "SELECT state FROM seriesweb.worker_status()", 'running')
  or die 'timed out waiting for the listed database';
is($narrow->safe_psql('other', "SELECT state FROM seriesweb.worker_status()"), 'not served',
	'a database the list leaves out is not served');
like($narrow->safe_psql('other', "SELECT detail FROM seriesweb.worker_status()"),
	qr/seriesweb\.database is 'served, missing'/, 'and worker_status names the setting');
unlike(slurp_file($narrow->logfile), qr/FATAL/, 'a listed database that does not exist costs no FATAL');
$narrow->stop;

# --- No background worker slot free ------------------------------------------------
my $full = new_node('full', conf => "seriesweb.database = ''\nmax_worker_processes = 2\n"
	  . "max_logical_replication_workers = 0\nmax_parallel_workers = 0\n");
$full->safe_psql('postgres', 'CREATE DATABASE one; CREATE DATABASE two;');
$full->safe_psql('one', 'CREATE EXTENSION seriesweb');
$full->poll_query_until('one', "SELECT state FROM seriesweb.worker_status()", 'running')
  or die 'timed out waiting for the first worker';
$full->safe_psql('two', 'CREATE EXTENSION seriesweb');
$full->poll_query_until('two', "SELECT state FROM seriesweb.worker_status()", 'no worker slot')
  or die 'timed out waiting for the launcher to give up on a slot';
like($full->safe_psql('two', "SELECT detail FROM seriesweb.worker_status()"),
	qr/raise max_worker_processes \(now 2\)/, 'worker_status names max_worker_processes');
ok($full->log_contains(qr/no background worker slot is free to serve database/), 'and so does the log');
$full->safe_psql('one', 'DROP EXTENSION seriesweb');
$full->poll_query_until('two', "SELECT state FROM seriesweb.worker_status()", 'running')
  or die 'timed out waiting for the freed slot to be used';
pass('a freed slot serves the waiting database');
$full->stop;

done_testing();
