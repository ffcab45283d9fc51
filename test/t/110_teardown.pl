#
# 110_teardown.pl - taking things away while requests are on the wire.
#
# Deleting a webhook block forgets its unsent deliveries; the attempts then
# in flight are not recorded for deliveries that no longer exist (no
# orphaned attempt rows).  DROP EXTENSION while the worker sends makes it
# say so in one line of the log, with no ERROR and no SQL, and a new
# CREATE EXTENSION is served again.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('teardown', conf => "seriesweb.timeout = '30s'\n");

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
set_route($recv, '/slow', { status => 200, delay_ms => 1500 });
set_route($recv, '/fast', { status => 200 });
my $slow = webhook_series($node, 'slow', $recv->url('/slow'));
my $fast = webhook_series($node, 'fast', $recv->url('/fast'));

# --- Deleting a block with deliveries in flight --------------------------------
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i::text, 'slow' FROM generate_series(1, 5) i");
wait_status($node, $slow, 'sending', 5, 'five deliveries on the wire');
sql("DELETE FROM seriesweb.blocks WHERE block_id = $slow");
wait_for_requests($recv, '/slow', 5, 30);
wait_until($node, "SELECT in_flight FROM seriesweb.worker_status()", '0', 'the slow requests to end');
# Outcomes are recorded in order: once a later delivery is recorded, the
# deleted block's attempts have been handled.
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('later', 'fast')");
wait_status($node, $fast, 'sent', 1, 'a later delivery to be recorded');
is(sql("SELECT count(*) FROM seriesweb.delivery_attempts a
         WHERE NOT EXISTS (SELECT FROM seriesweb.deliveries d WHERE d.delivery_id = a.delivery_id)"),
	'0', 'no attempt rows without their delivery');
is(sql("SELECT count(*) FROM seriesweb.delivery_attempts"), '1', 'only the later delivery has an attempt');

# --- DROP EXTENSION while a request is on the wire ------------------------------
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('gone', 'fast')");
set_route($recv, '/fast', { status => 200, delay_ms => 1500 });
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('gone2', 'fast')");
wait_until($node, "SELECT count(*) > 0 FROM seriesweb.deliveries WHERE status = 'sending'", 't',
	'a delivery on the wire');
my $offset = -s $node->logfile;
sql('DROP EXTENSION seriesweb');
ok($node->wait_for_log(qr/seriesweb: extension dropped from database "postgres"/, $offset),
	'the worker says in one line that the extension was dropped');
my $log = substr(PostgreSQL::Test::Utils::slurp_file($node->logfile), $offset);
unlike($log, qr/ERROR|seriesweb\.deliveries/, 'no ERROR and no SQL in the log');

sql('CREATE EXTENSION seriesweb');
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to serve again');
set_route($recv, '/again', { status => 200 });
my $again = webhook_series($node, 'again', $recv->url('/again'));
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('back', 'again')");
wait_status($node, $again, 'sent', 1, 'a delivery after CREATE EXTENSION again');

done_testing();
