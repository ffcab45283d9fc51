#
# 160_watching.pl - an application with its own tables gets webhooks from a
# series without writing to seriesweb.events (seriesweb.watch).
#
# Two watched tables (orders with a numeric customer id, and signups whose
# every row is one kind of event) feed one series each.  Single rows, a
# multi-row INSERT and a COPY of the application's role, which has no right
# on seriesweb's tables, reach the receiver once each, with the row's
# values; a rolled-back COPY sends nothing.  Then the database is dumped and
# restored: the watch comes back with the table, restoring the rows sends
# nothing again, and new rows of the restored table are delivered by the
# restored database's worker.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('main', conf => "seriesweb.database = ''\n");

sub sql { return $node->safe_psql('postgres', shift) }

set_route($recv, '/orders', { status => 200 });
set_route($recv, '/welcome', { status => 200 });

sql(<<'SQL');
CREATE EXTENSION seriesweb;
CREATE TABLE orders (order_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer bigint NOT NULL, total numeric NOT NULL, details jsonb);
CREATE TABLE signups (email text, plan text);
CREATE ROLE shop LOGIN;
GRANT INSERT ON orders, signups TO shop;
SELECT seriesweb.watch('orders', 'customer', event_name => 'order-placed', properties_column => 'details');
SELECT seriesweb.watch('signups', 'email', event_name => 'signed-up');
SQL
my $orders = sql(q{
	SELECT seriesweb.add_webhook(s, 'orders', '} . $recv->url('/orders') . q{',
	       after => seriesweb.add_rule(s, 'placed', 'order-placed'),
	       body => '{"customer": "{user.id}", "total": "{event.total}"}')
	  FROM seriesweb.create_series('Orders') AS s});
my $welcome = sql(q{
	SELECT seriesweb.add_webhook(s, 'welcome', '} . $recv->url('/welcome') . q{',
	       after => seriesweb.add_rule(s, 'pro', 'signed-up',
	                                   '[{"attribute": "event.plan", "op": "eq", "value": "pro"}]'),
	       body => '{"email": "{user.id}"}')
	  FROM seriesweb.create_series('Signups') AS s});
sql('SELECT seriesweb.set_live(series_id) FROM seriesweb.series');

# The application's role writes only its own tables.
my $shop = $node->connstr('postgres') . ' user=shop';
sub shop_psql
{
	my ($sql) = @_;
	my ($out, $err);
	my $rc = IPC::Run::run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $shop],
		'<', \$sql, '>', \$out, '2>', \$err);
	return ($rc, $err);
}

my ($ok, $err) = shop_psql(<<'SQL');
INSERT INTO orders (customer, total, details) VALUES (1, 10, '{"total": 10}');
INSERT INTO orders (customer, total, details)
SELECT i, i * 10, jsonb_build_object('total', i * 10) FROM generate_series(2, 4) i;
COPY orders (customer, total, details) FROM stdin;
5	50	{"total": 50}
6	60	{"total": 60}
\.
INSERT INTO signups VALUES ('ann@example.com', 'pro'), ('bob@example.com', 'free');
SQL
ok($ok, 'the application role inserts into its watched tables') or diag($err);

($ok, $err) = shop_psql(<<'SQL');
BEGIN;
COPY orders (customer, total, details) FROM stdin;
7	70	{"total": 70}
\.
ROLLBACK;
SQL
ok($ok, 'a rolled-back COPY');

wait_status($node, $orders, 'sent', 6, 'six orders delivered');
wait_status($node, $welcome, 'sent', 1, 'one welcome delivered');
my $got = wait_for_requests($recv, '/orders', 6, 30);
is_deeply([ sort map { $_->{body} } @$got ],
	[ map { qq({"customer":"$_","total":${_}0}) } 1 .. 6 ],
	'each order reached the receiver once, with its values');
is(request_count($recv, '/welcome'), 1, 'one signup matched the rule');
is(wait_for_requests($recv, '/welcome', 1, 30)->[0]{body}, '{"email":"ann@example.com"}',
	'the signup with its user');
is(sql(q{SELECT count(*) FROM seriesweb.users WHERE user_id = '7'}), '0',
	'the rolled-back COPY created no user');
is(sql('SELECT count(*) FROM seriesweb.events'), '0', 'no event was copied into seriesweb.events');
is(sql('SELECT count(*) FROM seriesweb.deliveries WHERE event_id IS NOT NULL'), '0',
	'deliveries of watched events have no event_id');

# Dump and restore into another database: the watch comes with the table.
my $dir = PostgreSQL::Test::Utils::tempdir();
command_ok(['pg_dump', '-Fc', '-f', "$dir/app.dump", '-d', $node->connstr('postgres')], 'pg_dump -Fc');
sql('CREATE DATABASE restored');
command_ok(['pg_restore', '-d', $node->connstr('restored'), "$dir/app.dump"], 'pg_restore');
sub restored { return $node->safe_psql('restored', shift) }
is(restored('SELECT string_agg(events::text, \',\' ORDER BY events::text) FROM seriesweb.watched'),
	'orders,signups', 'the restored tables are watched');
is(restored(q{SELECT count(*) FROM seriesweb.deliveries WHERE status = 'sent'}), '7',
	'the restored deliveries');
$node->poll_query_until('restored', q{SELECT state FROM seriesweb.worker_status()}, 'running')
  or die 'the restored database has no worker';
restored(q{INSERT INTO orders (customer, total, details) VALUES (8, 80, '{"total": 80}')});
$node->poll_query_until('restored',
	"SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $orders AND status = 'sent'", '7')
  or die 'the new order of the restored database was not sent';
$got = wait_for_requests($recv, '/orders', 7, 30);
is(scalar(@$got), 7, 'restoring sent nothing again; the new order was sent');
is($got->[6]{body}, '{"customer":"8","total":80}', 'the new order of the restored database');

$recv->stop;
done_testing();
