#
# 050_fairness.pl - a slow destination holds only its own slots: with most
# of the slots taken by a receiver that answers after a second, another
# destination's deliveries are sent while the slow backlog waits; deliveries
# held back for the slow one (passed over or handed back) are not attempts,
# and every delivery of both ends sent, once.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $slow = start_receiver();
my $fast = start_receiver();
# 4 slots: at most 3 for one destination.
my $node = new_node('fairness', conf => "seriesweb.max_concurrency = 4\n");

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start');

set_route($slow, '/s', { status => 200, delay_ms => 1000 });
set_route($fast, '/f', { status => 200 });
my $series = sql("SELECT seriesweb.create_series('two destinations')");
my $rule   = sql("SELECT seriesweb.add_rule($series, 'r', 'go')");
sql("SELECT seriesweb.add_webhook($series, 'slow', '@{[ $slow->url('/s') ]}', after => $rule)");
sql("SELECT seriesweb.add_webhook($series, 'fast', '@{[ $fast->url('/f') ]}', after => $rule)");
sql("SELECT seriesweb.set_live($series)");

# One statement, so both destinations' deliveries are queued interleaved:
# the slow ones alone need at least 15 / 3 = 5 seconds.
my $n = 15;
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i, 'go' FROM generate_series(1, $n) i");

wait_for_requests($fast, '/f', $n, 60);
my $slow_by_then = request_count($slow, '/s');
cmp_ok($slow_by_then, '<', $n,
	"every fast delivery arrived while the slow destination still had a backlog ($slow_by_then of $n sent)");

wait_until($node, "SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sent'",
	2 * $n, 'every delivery to be sent');
is(request_count($slow, '/s'), $n, 'the slow destination got each of its deliveries once');
is(request_count($fast, '/f'), $n, 'the fast destination got each of its deliveries once');
is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE attempts <> 1"),
	'0', 'held-back deliveries were not counted as attempts');
is(sql("SELECT sent, failed, pending FROM seriesweb.series_stats WHERE series_id = $series"),
	"@{[ 2 * $n ]}|0|0", 'the series counts every delivery sent');

$node->stop;
done_testing();
