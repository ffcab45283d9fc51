#
# 140_no_idle_wait.pl - deliveries are never held back while their
# destination has free slots: one hanging path of a host slows only the
# deliveries to that path, not those to the host's other paths; and a large
# backlog to a port that refuses connections, whose first deliveries were
# handed back before anyone knew how fast it fails, is worked through at the
# pace of its slots, not at the pace guessed when they were handed back.
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SeriesWebTest;

my $recv = start_receiver();

# --- A hanging path and a fast one on the same host:port --------------------
# The default 64 slots, 48 for one destination: more hanging deliveries
# than that, queued first, and a timeout longer than the test.
my $node = new_node('paths', conf => "seriesweb.timeout = '30s'\n");

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start');

set_route($recv, '/hang', { status => 200, delay_ms => 600_000 });
set_route($recv, '/fast', { status => 200 });
my $hang = webhook_series($node, 'hang', $recv->url('/hang'));
my $fast = webhook_series($node, 'fast', $recv->url('/fast'));
my ($nhang, $nfast) = (60, 1000);
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'h' || i, 'hang' FROM generate_series(1, $nhang) i");
my $t0 = time();
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'f' || i, 'fast' FROM generate_series(1, $nfast) i");
wait_for_requests($recv, '/fast', $nfast, 15);
my $took = time() - $t0;
is(request_count($recv, '/fast'), $nfast,
	sprintf('every fast delivery arrived within 15 s of being queued (%.1f s)', $took));
cmp_ok(request_count($recv, '/hang'), '>', 0, 'the hanging path has its requests out meanwhile');
wait_status($node, $fast, 'sent', $nfast, 'the fast deliveries to be recorded');
is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $fast AND attempts <> 1"), '0',
	'held-back fast deliveries were not counted as attempts');
is(request_count($recv, '/fast'), $nfast, 'each fast delivery arrived once');
$node->stop;

# --- A backlog to a port that refuses connections --------------------------
# 4 slots, 3 for the destination: the first claim keeps 3 of its 512 and
# hands back the rest while no attempt has ended yet, at the pace of an
# unknown destination; the attempts then fail at once, and the rest must
# follow at that pace.  Every delivery makes its 3 attempts (retries after
# 200 and 400 ms) and fails.
$node = new_node('refused', conf => "seriesweb.max_concurrency = 4\n");
sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start');
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $refused = webhook_series($node, 'refused', "http://127.0.0.1:$port/nobody");
my $n = 5000;
$t0 = time();
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'r' || i, 'refused' FROM generate_series(1, $n) i");

# Attempts keep being made until every delivery has failed: sample the
# count while waiting, and remember the longest time it stood still.
my ($last, $last_change, $longest_still) = (-1, time(), 0);
my $attempts_sql = "SELECT count(*) FROM seriesweb.delivery_attempts a
                      JOIN seriesweb.deliveries d USING (delivery_id) WHERE d.block_id = $refused";
my $done_sql = "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $refused AND status = 'failed'";
while (sql($done_sql) < $n && time() - $t0 < 60)
{
	my $count = sql($attempts_sql);
	if ($count != $last)
	{
		($last, $last_change) = ($count, time());
	}
	$longest_still = time() - $last_change if time() - $last_change > $longest_still;
	Time::HiRes::sleep(0.1);    # a sampling interval, not a wait for anything
}
my $all = time() - $t0;
is(sql($done_sql), $n, "every delivery to the refused port failed");
cmp_ok($all, '<', 20, sprintf('... within 20 s of being queued (%.1f s)', $all));
cmp_ok($longest_still, '<', 2, sprintf('attempts never stood still for 2 s meanwhile (at most %.1f s)', $longest_still));
is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $refused AND attempts <> 3"), '0',
	'each made its 3 attempts, no more (handing back is not an attempt)');
$node->stop;

done_testing();
