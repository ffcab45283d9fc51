#
# 130_standby.pl - a hot standby sends nothing and says so; after the
# primary stops in immediate mode and the standby is promoted, every
# delivery the primary committed is sent (those the primary had on the wire
# possibly twice: at least once).
#
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use JSON::PP;
use Time::HiRes qw(time);
use SeriesWebTest;

my $recv = start_receiver();
my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'seriesweb'
seriesweb.allowed_networks = '127.0.0.1/32'
seriesweb.timeout = '60s'
seriesweb.max_concurrency = 80
");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION seriesweb');

# The first requests hang, so that deliveries are on the wire (as many as
# one path of a destination may have in flight) and the rest pending when
# the primary goes; after those the receiver answers.
set_route($recv, '/hook', (({ status => 200, delay_ms => 30000 }) x 100), { status => 200 });
my $hook = webhook_series($primary, 'go', $recv->url('/hook'));

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	"INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i::text, 'go' FROM generate_series(1, 100) i");
wait_for_requests($recv, '/hook', 1, 60);
$primary->wait_for_catchup($standby);

# --- The standby sends nothing and says so --------------------------------------
is($standby->safe_psql('postgres', "SELECT state FROM seriesweb.worker_status()"), 'standby',
	'worker_status on a standby');
is($standby->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity
                                     WHERE backend_type LIKE 'seriesweb%'"), '0',
	'no launcher and no worker run on the standby');
is($standby->safe_psql('postgres', "SELECT count(*) FROM seriesweb.deliveries"), '100',
	'the deliveries are on the standby');

# --- The primary goes; the standby is promoted ------------------------------------
$primary->stop('immediate');
my $on_the_wire = request_count($recv, '/hook');
# What the new primary sends gets an answer at once.
set_route($recv, '/hook', { status => 200 });
my $promoted = time;
$standby->promote;
wait_for_requests($recv, '/hook', $on_the_wire + 1, 60);
note(sprintf('promotion to the first delivery of the new primary: %.0f ms', 1000 * (time - $promoted)));
wait_until($standby, "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $hook AND status = 'sent'",
	'100', 'the new primary to send what was pending and what was on the wire');
note(sprintf('promotion to all 100 sent: %.0f ms', 1000 * (time - $promoted)));

my %seen;
$seen{ decode_json($_->{body})->{delivery_id} }++ for @{ requests($recv, '/hook') };
my @ids = split /\n/, $standby->safe_psql('postgres', "SELECT delivery_id FROM seriesweb.deliveries");
is(scalar(grep { !$seen{$_} } @ids), 0, 'every delivery reached the receiver');
cmp_ok($on_the_wire, '>', 0, 'requests were on the wire at the failover');
is(scalar(grep { $seen{$_} > 1 } @ids), $on_the_wire, 'only those on the wire at the failover arrived twice');
is($standby->safe_psql('postgres', "SELECT state FROM seriesweb.worker_status()"), 'running',
	'worker_status after promotion');

done_testing();
