#
# 090_backup.pl - pg_dump and pg_restore keep everything seriesweb holds.
#
# A database with deliveries in every status (sent, failed, pending for
# later, and one on the wire while the dump runs) and a user held by a wait
# is dumped with
# pg_dump -Fc and as plain SQL, and restored into another database of the
# same cluster, into another cluster, and through psql.  Every row, the
# statistics and the sequences come back; restoring the events enqueues
# nothing again; what was sent is not sent again; what was pending, or
# being sent, is sent by the restored database's worker, which also
# releases the wait; new ids never collide with restored ones.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $source = new_node('source', conf => "seriesweb.timeout = '60s'\n");

sub sql { return $source->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');

set_route($recv, '/sent', { status => 200 });
set_route($recv, '/failed', { status => 500 });
# The first request hangs while the dump runs; the next one is answered.
set_route($recv, '/hang', { status => 200, delay_ms => 20000 }, { status => 200 });
set_route($recv, '/later', { status => 200 });
set_route($recv, '/waited', { status => 200 });

my $sent = webhook_series($source, 'sent', $recv->url('/sent'));
my $failed = webhook_series($source, 'failed', $recv->url('/failed'));
my $hang = webhook_series($source, 'hang', $recv->url('/hang'));
my $later = webhook_series($source, 'later', $recv->url('/later'));
my $waited = sql(q{
	SELECT seriesweb.add_webhook(s, 'after an hour', '} . $recv->url('/waited') . q{',
	         after => seriesweb.add_wait(s, 'an hour', seriesweb.add_rule(s, 'waited', 'waited'), '1 hour'))
	  FROM seriesweb.create_series('waited') AS s});
sql("SELECT seriesweb.set_live(series_id) FROM seriesweb.series WHERE name = 'waited'");
sql("UPDATE seriesweb.blocks SET secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' WHERE block_id = $sent");
sql("INSERT INTO seriesweb.companies (company_id, name, attributes) VALUES ('c1', 'Acme', '{\"tier\": 2}')");
sql("INSERT INTO seriesweb.users (user_id, email, name, company_id) VALUES ('u1', 'u1\@example.com', 'Una', 'c1')");

sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i, 'sent' FROM generate_series(1, 3) i");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'failed'), ('u1', 'waited')");
wait_status($source, $sent, 'sent', 3, 'three deliveries to be sent');
wait_status($source, $failed, 'failed', 1, 'a delivery to fail');
# Pending, due in an hour: committed that way, so the worker never sees it due.
sql("BEGIN; INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'later'), ('u2', 'later');
     UPDATE seriesweb.deliveries SET next_attempt_at = now() + interval '1 hour' WHERE block_id = $later;
     COMMIT;");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u1', 'hang')");
wait_status($source, $hang, 'sending', 1, 'a delivery on the wire');

# Every row of every table that holds data, the statistics and the
# sequences, as text.  The counters are compared as the statistics they
# add up to: the worker folds their rows now and then.
my @tables = qw(companies users events series blocks connections progress timers deliveries
  delivery_attempts block_activity);
my $contents = join("\nUNION ALL\n",
	(map { "SELECT '$_ ' || count(*) || ' ' || coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '')
	          FROM (SELECT (to_jsonb(t) - 'installation_id' - 'claimed_by')::text AS r
	                  FROM seriesweb.$_ t) s" } @tables),
	"SELECT string_agg(concat_ws(',', title, kind, reached, sent, failed, pending, last_sent_at,
	                             last_failed_at, last_error, waiting, not_matched), ' ' ORDER BY block_id)
	   FROM seriesweb.block_stats",
	"SELECT string_agg(concat_ws(',', name, state, users_entered, sent, failed, pending), ' '
	                   ORDER BY series_id) FROM seriesweb.series_stats",
	"SELECT string_agg(sequencename || '=' || coalesce(last_value, 0), ' ' ORDER BY sequencename)
	   FROM pg_sequences WHERE schemaname = 'seriesweb'");
my @labels = (@tables, 'block_stats', 'series_stats', 'the sequences');

# Dump twice, while the hanging delivery is in flight; nothing changes
# meanwhile, so both dumps hold the state read before and after.
my $dir = PostgreSQL::Test::Utils::tempdir();
my $before = sql($contents);
command_ok(['pg_dump', '-Fc', '-f', "$dir/source.dump", '-d', $source->connstr('postgres')],
	'pg_dump -Fc');
command_ok(['pg_dump', '-f', "$dir/source.sql", '-d', $source->connstr('postgres')], 'pg_dump plain');
is(sql($contents), $before, 'the source did not change while it was dumped');
is(sql("SELECT status FROM seriesweb.deliveries WHERE block_id = $hang"), 'sending',
	'the dump holds a delivery in sending');

# Compares a restored database with the source as it was dumped.
sub same_as_source
{
	my ($node, $db, $how) = @_;
	my @got = split /\n/, $node->safe_psql($db, $contents);
	my @want = split /\n/, $before;
	is($got[$_], $want[$_], "$how: $labels[$_] as dumped") for 0 .. $#want;
}

# --- pg_restore into another database of the same cluster -------------------
sql('CREATE DATABASE copy');
command_ok(['pg_restore', '--exit-on-error', '-d', $source->connstr('copy'), "$dir/source.dump"],
	'pg_restore into another database');
same_as_source($source, 'copy', 'another database');

# --- plain SQL through psql ---------------------------------------------------
sql('CREATE DATABASE plain');
command_ok(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dir/source.sql", '-d',
		$source->connstr('plain')], 'a plain dump loads with psql');
same_as_source($source, 'plain', 'plain dump');

# --- pg_restore into another cluster, whose worker sends ----------------------
# Served only after the comparison: its worker would start sending at once.
my $target = new_node('target', conf => "seriesweb.database = 'elsewhere'\n");
command_ok(['pg_restore', '--exit-on-error', '-d', $target->connstr('postgres'), "$dir/source.dump"],
	'pg_restore into another cluster');
same_as_source($target, 'postgres', 'another cluster');
# The wait of an hour is over (while the server was down, as it were).
$target->safe_psql('postgres', "UPDATE seriesweb.timers SET due_at = now()");
$target->append_conf('postgresql.conf', "seriesweb.database = 'postgres'\n");
$target->restart;

sub tsql { return $target->safe_psql('postgres', shift) }

# The delivery that was on the wire is sent again (at least once); what was
# pending is sent when due; nothing sent is sent again.
wait_status($target, $hang, 'sent', 1, 'the restored delivery in sending to be sent');
tsql("UPDATE seriesweb.deliveries SET next_attempt_at = now() WHERE block_id = $later");
wait_status($target, $later, 'sent', 2, 'the restored pending deliveries to be sent');
wait_for_requests($recv, '/hang', 2, 30);
is(request_count($recv, '/hang'), 2, 'the interrupted delivery: once from the source, once after the restore');
is(request_count($recv, '/later'), 2, 'the pending deliveries: sent once, by the restored database');
is(request_count($recv, '/sent'), 3, 'sent deliveries are not sent again');
is(request_count($recv, '/failed'), 3, 'failed deliveries are not sent again');
wait_status($target, $waited, 'sent', 1, 'the restored wait to be released and its webhook sent');
is(request_count($recv, '/waited'), 1, 'the restored wait is released once, by the restored database');
is(tsql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id <> $waited"), '7',
	'restoring the events enqueued nothing');

# New rows take ids after the restored ones, so webhook-ids stay unique.
tsql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u9', 'sent')");
wait_status($target, $sent, 'sent', 4, 'a new event in the restored database to be delivered');
is(tsql("SELECT count(*) FROM seriesweb.deliveries d JOIN seriesweb.events e USING (event_id)
          WHERE e.user_id = 'u9' AND d.delivery_id > 7 AND e.event_id > 7"), '1',
	'new delivery and event ids follow the restored ones');
my ($new) = grep { $_->{body} =~ /"u9"/ } @{ requests($recv, '/sent') };
my %h = map { (lc $_->[0] => $_->[1]) } @{ $new->{headers} };
like($h{'webhook-signature'} // '', qr/^v1,/, 'the restored secret signs');
is(tsql("SELECT sent, failed, pending FROM seriesweb.block_stats WHERE block_id = $sent"), '4|0|0',
	'statistics go on from the restored counts');

done_testing();
