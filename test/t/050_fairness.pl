#
# 050_fairness.pl - a slow destination holds only its own slots: with most
# of the slots taken by a receiver that answers after a second, another
# destination's deliveries are sent while the slow backlog waits; deliveries
# held back for the slow one (passed over or handed back) are not attempts,
# and every delivery of both ends sent, once.  With a backlog larger than a
# claim, the worker waits for the slow destination's slots instead of
# looking over and over for something else to claim.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use SeriesWebTest;

my $slow = start_receiver();
my $fast = start_receiver();
# 4 slots: at most 3 for one destination, 2 for one path of it.
my $node = new_node('fairness', conf => "seriesweb.max_concurrency = 4\n");

sub sql { return $node->safe_psql('postgres', shift) }

# CPU time a process has used, in clock ticks (utime + stime of /proc/PID/stat).
sub cpu_ticks
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or die "cannot read /proc/$pid/stat: $!";
	my @f = split ' ', (split /\) /, <$fh>)[1];
	close $fh;
	return $f[11] + $f[12];
}

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
# the slow ones alone need at least 15 / 2 = 7.5 seconds.
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

# Many more deliveries than one claim takes (512), all for the slow one:
# once its slots are full, what the claims pass over stays due.
my $pile = sql("SELECT seriesweb.create_series('pile')");
my $pile_rule = sql("SELECT seriesweb.add_rule($pile, 'r', 'pile')");
my $pile_hook = sql("SELECT seriesweb.add_webhook($pile, 'slow', '@{[ $slow->url('/s') ]}', after => $pile_rule)");
sql("SELECT seriesweb.set_live($pile)");
my $pile_n = 20000;
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'p' || i, 'pile' FROM generate_series(1, $pile_n) i");
wait_for_requests($slow, '/s', $n + 3, 60);
my $pid = sql("SELECT pid FROM seriesweb.worker_status()");
my $cpu_before = cpu_ticks($pid);
my $t0 = time();
sleep 2;    # a window to measure over, not a wait for anything
my $busy = (cpu_ticks($pid) - $cpu_before) / (time() - $t0);
cmp_ok(sql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $pile_hook AND status = 'pending'"),
	'>', $pile_n / 2, 'the slow backlog lasted the whole window');
cmp_ok($busy, "<", 25, "the worker stayed mostly idle meanwhile ($busy CPU ticks a second)");
# The rest would take minutes: drop it, and let what is on the wire finish.
sql("DELETE FROM seriesweb.deliveries WHERE block_id = $pile_hook AND status = 'pending'");
wait_until($node, "SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sending'", '0',
	'the requests on the wire to finish');

$node->stop;
done_testing();
