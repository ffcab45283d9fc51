#
# 070_stall.pl - a stall of the worker is not held against the requests in
# flight.  While another session holds an ACCESS EXCLUSIVE lock on the queue
# (VACUUM FULL, ALTER TABLE, pg_repack) for longer than seriesweb.timeout,
# the worker cannot record outcomes; and while it is stopped altogether (a
# slow fsync, a descheduled process: here SIGSTOP), it reads nothing.  In
# both cases the receiver answered every request in time: each must be
# recorded as the success it was, on its first attempt, and sent once.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time sleep);
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('stall', conf => "seriesweb.timeout = '2s'\n");

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start');

# 36 requests, all in flight at once (of the default 64 slots, 48 for one
# destination, 36 for one path), answered in turn between 1.0 and 1.35 s
# after they arrive: well within the 2 s timeout, and not all in one go, so
# that the first answer makes the worker record while the others are out.
my $n = 36;
my @answers = map { { status => 200, delay_ms => 1000 + 10 * $_ } } 0 .. $n - 1;
my $stall_s = 5;

# Sends $n deliveries to $path, runs $stall->($first_answer_at) once all are
# on the wire, and checks that the stall cost nothing.
sub survive
{
	my ($label, $stall) = @_;
	my $path = "/$label";
	set_route($recv, $path, @answers);
	my $hook = webhook_series($node, $label, $recv->url($path));
	sql("INSERT INTO seriesweb.events (user_id, name) SELECT '$label' || i, '$label' FROM generate_series(1, $n) i");
	my $got = wait_for_requests($recv, $path, $n, 30);
	is(scalar @$got, $n, "$label: every request is on the wire");
	my $first_answer_at = (sort { $a <=> $b } map { $_->{time} } @$got)[0] + $answers[0]{delay_ms} / 1000;

	$stall->($first_answer_at);

	wait_until($node,
		"SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $hook AND status IN ('sent', 'failed')",
		$n, "$label: every delivery to be recorded");
	is(sql("SELECT count(*) FILTER (WHERE status = 'sent' AND attempts = 1), count(*)
	          FROM seriesweb.deliveries WHERE block_id = $hook"),
		"$n|$n", "$label: every delivery was sent on its first attempt");
	is(sql("SELECT count(*), count(*) FILTER (WHERE a.error IS NULL AND a.response_status = 200)
	          FROM seriesweb.delivery_attempts a JOIN seriesweb.deliveries d USING (delivery_id)
	         WHERE d.block_id = $hook"),
		"$n|$n", "$label: one attempt each, none failed");
	is(request_count($recv, $path), $n, "$label: the receiver got each request once");
	return $hook;
}

# --- The queue is locked for longer than the timeout ------------------------
my $locker = $node->background_psql('postgres');
my $locked = survive('locked', sub {
	my ($first_answer_at) = @_;
	$locker->query_safe('BEGIN; LOCK TABLE seriesweb.deliveries IN ACCESS EXCLUSIVE MODE');
	my $locked_at = time();
	cmp_ok($locked_at, '<', $first_answer_at,
		'locked: the lock was taken before the first answer came');
	wait_until($node,
		"SELECT count(*) > 0 FROM pg_locks WHERE relation = 'seriesweb.deliveries'::regclass AND NOT granted",
		't', 'locked: the worker to wait for the lock');
	sleep($stall_s - (time() - $locked_at));    # the stall itself, not a wait for anything
	$locker->query_safe('COMMIT');
});
# The worker did not sit in the lock queue: it kept reading answers, each
# as it came, instead of finding them all after the lock was gone.
cmp_ok(sql("SELECT max(a.duration_ms) FROM seriesweb.delivery_attempts a
              JOIN seriesweb.deliveries d USING (delivery_id) WHERE d.block_id = $locked"),
	'<', 2000, 'locked: each attempt took as long as the receiver did, not the lock');
$locker->quit;

# --- The worker does not run at all for longer than the timeout -------------
my $pid = sql("SELECT pid FROM seriesweb.worker_status()");
survive('stopped', sub {
	my ($first_answer_at) = @_;
	kill 'STOP', $pid or die "cannot stop the worker: $!";
	my $stopped_at = time();
	cmp_ok($stopped_at, '<', $first_answer_at,
		'stopped: the worker stopped before the first answer came');
	sleep($stall_s);    # the stall itself, not a wait for anything
	kill 'CONT', $pid or die "cannot continue the worker: $!";
});

$node->stop;
done_testing();
