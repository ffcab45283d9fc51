#
# 020_worker_lifecycle.pl - the worker's life: the launcher starts it when
# CREATE EXTENSION commits, and nothing queued is lost when it is killed mid-send
# (kill -9), when the server stops in immediate mode with requests in
# flight, or when it is terminated; without the preload, deliveries wait and
# worker_status says why.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use SeriesWebTest;

my $recv = start_receiver();
# The test framework turns restart_after_crash off; a crash must restart here.
my $node = new_node('lifecycle', conf => "seriesweb.timeout = '10s'\nrestart_after_crash = on\n");

sub sql { return $node->safe_psql('postgres', shift) }

# --- Before CREATE EXTENSION, only the launcher runs ---------------------------
ok($node->poll_query_until('postgres',
		"SELECT count(*) FILTER (WHERE backend_type = 'seriesweb launcher') || ' ' ||
		        count(*) FILTER (WHERE backend_type = 'seriesweb worker')
		   FROM pg_stat_activity", '1 0'),
	'the launcher runs, and no worker where the extension does not exist');

# CREATE EXTENSION asks the launcher for a worker when it commits.
sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start sending');
is(sql("SELECT database, in_flight FROM seriesweb.worker_status()"), 'postgres|0', 'worker_status names its database');

# A series whose deliveries take a second to answer, with the default
# payload (it carries the delivery id).
set_route($recv, '/slow', { status => 200, delay_ms => 1000 });
my $series = sql("SELECT seriesweb.create_series('crash')");
my $rule = sql("SELECT seriesweb.add_rule($series, 'r', 'go')");
my $hook = sql("SELECT seriesweb.add_webhook($series, 'w', '@{[ $recv->url('/slow') ]}', after => $rule)");
sql("SELECT seriesweb.set_live($series)");

# Enqueue $n deliveries, wait until some are on the wire, then break things
# with $break; afterwards every delivery must end sent and have reached the
# receiver at least once.
sub survive
{
	my ($label, $n, $break) = @_;
	clear_requests($recv);
	sql("INSERT INTO seriesweb.events (user_id, name) SELECT '$label' || i, 'go' FROM generate_series(1, $n) i");
	wait_until($node, "SELECT count(*) > 0 FROM seriesweb.deliveries WHERE status = 'sending'", 't',
		"$label: deliveries in flight");
	$break->();
	wait_until($node,
		"SELECT count(*) FROM seriesweb.deliveries WHERE user_id LIKE '$label%' AND status = 'sent'",
		$n, "$label: every delivery to be sent");
	my %seen;
	for my $r (@{ requests($recv, '/slow') })
	{
		$seen{ decode_json($r->{body})->{delivery_id} }++;
	}
	# Ids, not a range: a crash makes the sequence skip ahead.
	my @ids = split /\n/, sql("SELECT delivery_id FROM seriesweb.deliveries WHERE user_id LIKE '$label%'");
	is(scalar @ids, $n, "$label: one delivery per event");
	my @missing = grep { !$seen{$_} } @ids;
	is(scalar @missing, 0, "$label: every delivery reached the receiver");
	is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE user_id LIKE '$label%' AND status <> 'sent'"),
		'0', "$label: none is left behind");
}

# --- kill -9 of the worker while it sends ------------------------------------
survive('kill9', 20, sub {
	my $pid = sql("SELECT pid FROM seriesweb.worker_status()");
	ok(kill('KILL', $pid), 'killed the worker with SIGKILL');
});

# --- pg_ctl stop -m immediate with requests in flight -------------------------
survive('immediate', 20, sub {
	$node->stop('immediate');
	$node->start;
});

# --- terminating the worker: the launcher starts a new one ---------------------
my $old_pid = sql("SELECT pid FROM seriesweb.worker_status()");
survive('terminate', 10, sub {
	sql("SELECT pg_terminate_backend($old_pid)");
});
isnt(sql("SELECT pid FROM seriesweb.worker_status()"), $old_pid, 'a new worker took over');

# --- a clean restart (SIGTERM) with requests in flight -------------------------
survive('restart', 10, sub { $node->restart; });

# --- block_stats agree with the deliveries after all this ---------------------
wait_until($node, "SELECT sent FROM seriesweb.block_stats WHERE block_id = $hook", '60',
	'block_stats to count every delivery once');
is(sql("SELECT reached, sent, failed, pending FROM seriesweb.block_stats WHERE block_id = $hook"),
	'60|60|0|0', 'each delivery is counted once as sent');

# --- without the preload, deliveries wait and worker_status says why -----------
my $plain = new_node('plain', conf => "shared_preload_libraries = ''\n");
$plain->safe_psql('postgres', 'CREATE EXTENSION seriesweb');
is($plain->safe_psql('postgres', "SELECT state FROM seriesweb.worker_status()"), 'not loaded',
	'worker_status: not loaded');
like($plain->safe_psql('postgres', "SELECT detail FROM seriesweb.worker_status()"),
	qr/shared_preload_libraries/, 'and the detail names shared_preload_libraries');
$plain->safe_psql('postgres', qq{
	SELECT seriesweb.create_series('s');
	SELECT seriesweb.add_rule(1, 'r', 'go');
	SELECT seriesweb.add_webhook(1, 'w', '@{[ $recv->url('/unloaded') ]}', after => 1);
	SELECT seriesweb.set_live(1);
	INSERT INTO seriesweb.events (user_id, name) VALUES ('x', 'go');
});
is($plain->safe_psql('postgres', "SELECT status FROM seriesweb.deliveries"), 'pending',
	'the delivery is enqueued and waits');
$plain->stop;

done_testing();
