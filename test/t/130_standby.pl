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

# The first 60 requests hang (60 is as many as one destination may have in
# flight: 3/4 of seriesweb.max_concurrency), so that 60 deliveries are on
# the wire and 40 pending when the primary goes; then the receiver answers.
set_route($recv, '/hook', (({ status => 200, delay_ms => 30000 }) x 60), { status => 200 });
my $hook = webhook_series($primary, 'go', $recv->url('/hook'));

$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

$primary->safe_psql('postgres',
	"INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i::text, 'go' FROM generate_series(1, 100) i");
wait_for_requests($recv, '/hook', 60, 60);
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
my $promoted = time;
$standby->promote;
wait_for_requests($recv, '/hook', 61, 60);
note(sprintf('promotion to the first delivery of the new primary: %.0f ms', 1000 * (time - $promoted)));
wait_until($standby, "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $hook AND status = 'sent'",
	'100', 'the new primary to send what was pending and what was on the wire');
note(sprintf('promotion to all 100 sent: %.0f ms', 1000 * (time - $promoted)));

my %seen;
$seen{ decode_json($_->{body})->{delivery_id} }++ for @{ requests($recv, '/hook') };
my @ids = split /\n/, $standby->safe_psql('postgres', "SELECT delivery_id FROM seriesweb.deliveries");
is(scalar(grep { !$seen{$_} } @ids), 0, 'every delivery reached the receiver');
is(scalar(grep { $seen{$_} > 1 } @ids), 60, 'only those on the wire at the failover arrived twice');
is($standby->safe_psql('postgres', "SELECT state FROM seriesweb.worker_status()"), 'running',
	'worker_status after promotion');

done_testing();
