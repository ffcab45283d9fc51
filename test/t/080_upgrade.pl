#
# 080_upgrade.pl - ALTER EXTENSION seriesweb UPDATE from 0.1 keeps every row
# and gives exactly what a fresh 0.2 install gives.
#
# A database is filled at 0.1 (the server already runs the 0.2 library, as
# after a package upgrade): the worker says "update pending" and sends
# nothing, while events still enqueue.  Deliveries are put in every status.
# After the update every row and sequence is as it was, the worker sends
# what was pending or interrupted, and the schema, dumped with pg_dump, is
# the same as that of a fresh 0.2 install.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('upgrade');

sub sql { return $node->safe_psql('postgres', shift) }

# --- At 0.1 under the 0.2 library: events enqueue, the worker waits ---------
sql("CREATE EXTENSION seriesweb VERSION '0.1'");
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'update pending',
	'the worker to see the old version');
like(sql("SELECT detail FROM seriesweb.worker_status()"),
	qr/has seriesweb 0\.1 and the server runs seriesweb 0\.2: run ALTER EXTENSION seriesweb UPDATE/,
	'worker_status says what to do');

set_route($recv, '/old', { status => 200 });
my $hook = webhook_series($node, 'old', $recv->url('/old'), body => '{"user": "{user.id}"}');
sql("INSERT INTO seriesweb.companies (company_id, name) VALUES ('c1', 'Acme')");
sql("INSERT INTO seriesweb.users (user_id, email, company_id) VALUES ('u1', 'u1\@example.com', 'c1')");
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'u' || i, 'old' FROM generate_series(1, 4) i");
is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE status = 'pending'"), '4',
	'events enqueue at 0.1 with the new library');

# One delivery in each status, as the worker would have left them.
sql(<<"EOS");
UPDATE seriesweb.deliveries SET status = 'sent', attempts = 1, finished_at = now(), response_status = 200
 WHERE user_id = 'u1';
UPDATE seriesweb.deliveries SET status = 'failed', attempts = 3, finished_at = now(),
       response_status = 500, last_error = 'HTTP 500'
 WHERE user_id = 'u2';
UPDATE seriesweb.deliveries SET status = 'sending', attempts = 1 WHERE user_id = 'u3';
INSERT INTO seriesweb.delivery_attempts (delivery_id, attempt, started_at, duration_ms, response_status, error)
SELECT delivery_id, a, now(), 1.5, CASE WHEN user_id = 'u1' THEN 200 ELSE 500 END,
       CASE WHEN user_id = 'u1' THEN NULL ELSE 'HTTP 500' END
  FROM seriesweb.deliveries, generate_series(1, attempts) a WHERE attempts > 0 AND user_id <> 'u3';
INSERT INTO seriesweb.block_counts (block_id, series_id, sent, failed)
SELECT block_id, series_id, 1, 1 FROM seriesweb.blocks WHERE block_id = $hook;
EOS

# Grants the DBA gave at 0.1 on functions that 0.2 replaces.
sql("CREATE ROLE author; GRANT USAGE ON SCHEMA seriesweb TO author;
     GRANT EXECUTE ON FUNCTION seriesweb.retry_failed, seriesweb.add_rule, seriesweb.add_webhook,
                               seriesweb.connect TO author;");

# Every row of every 0.1 table (without the columns 0.2 adds) and where
# each sequence stands, as text; the update and the second look are one
# transaction, since its commit wakes the worker, which then sends.
my @tables = qw(companies users events series blocks connections progress deliveries
  delivery_attempts block_counts block_activity);
my $contents = join("\nUNION ALL\n",
	(map { "SELECT '$_ ' || count(*) || ' ' || coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '')
	          FROM (SELECT (to_jsonb(t) - '{installation_id, claimed_by, duration, match_within,
	                                        path, not_matched_at, waiting, not_matched, tags, tag, tag_action}'::text[])::text AS r
	                  FROM seriesweb.$_ t) s" } @tables),
	"SELECT string_agg(sequencename || '=' || coalesce(last_value, 0), ' ' ORDER BY sequencename)
	   FROM pg_sequences WHERE schemaname = 'seriesweb'");
my @before = split /\n/, sql($contents);
my @after = split /\n/, sql("BEGIN; ALTER EXTENSION seriesweb UPDATE; $contents; COMMIT;");

# --- The update ------------------------------------------------------------
is(sql("SELECT extversion FROM pg_extension WHERE extname = 'seriesweb'"), '0.2', 'updated to 0.2');
is($after[$_], $before[$_], "kept: " . ($tables[$_] // 'the sequences')) for 0 .. $#before;
is(sql("SELECT count(DISTINCT installation_id) FROM seriesweb.events"), '1',
	'existing events belong to this installation');
is(sql("SELECT has_function_privilege('author', 'seriesweb.retry_failed(int, timestamptz)', 'EXECUTE')
         || ' ' || has_function_privilege('public', 'seriesweb.retry_failed(int, timestamptz)', 'EXECUTE')"),
	'true false', 'retry_failed(block, since) keeps the grants of retry_failed(block)');
is(sql("SELECT string_agg(has_function_privilege('author', f, 'EXECUTE')::text, ' ')
          FROM unnest(ARRAY['seriesweb.add_rule(int, text, text, jsonb, int, interval, text)',
                            'seriesweb.add_webhook(int, text, text, int, text, jsonb, json, text, text)',
                            'seriesweb.connect(int, int, text)']) f"),
	'true true true', 'add_rule, add_webhook and connect keep their grants as they gain a path');
is(sql("SELECT count(*) FILTER (WHERE path = 'matched') || '/' || count(*) FROM seriesweb.connections"),
	'1/1', 'connections kept take the matched path');

# The update woke the worker: what was pending or interrupted is sent.
wait_until($node, "SELECT state FROM seriesweb.worker_status()", 'running', 'the worker to start');
wait_status($node, $hook, 'sent', 3, 'the pending and interrupted deliveries to be sent');
my @users = sort map { $_->{body} =~ /"user":"(u\d)"/ ? $1 : '?' } @{ requests($recv, '/old') };
is("@users", 'u3 u4', 'the interrupted and the pending delivery were sent, nothing else');
is(sql("SELECT status, attempts FROM seriesweb.deliveries WHERE user_id = 'u2'"), 'failed|3',
	'a failed delivery stays failed');
sql("SELECT seriesweb.retry_delivery(delivery_id) FROM seriesweb.deliveries WHERE user_id = 'u2'");
sql("INSERT INTO seriesweb.events (user_id, name) VALUES ('u5', 'old')");
wait_status($node, $hook, 'sent', 5, 'a retried delivery and a new event\'s delivery');
is(sql("SELECT sent, failed, pending FROM seriesweb.block_stats WHERE block_id = $hook"), '5|0|0',
	'statistics after the update');

# --- Databases in other encodings install it too -----------------------------
# (The script is read in the database's encoding: it is ASCII.)
sql("CREATE DATABASE eucjp TEMPLATE template0 ENCODING 'EUC_JP' LC_COLLATE 'C' LC_CTYPE 'C'");
$node->safe_psql('eucjp', 'CREATE EXTENSION seriesweb');
is($node->safe_psql('eucjp', "SELECT extversion FROM pg_extension WHERE extname = 'seriesweb'"), '0.2',
	'CREATE EXTENSION in an EUC_JP database');

# --- The updated schema is a fresh 0.2 install -----------------------------
sql("CREATE DATABASE fresh");
$node->safe_psql('fresh', 'CREATE EXTENSION seriesweb; GRANT USAGE ON SCHEMA seriesweb TO author;
                           GRANT EXECUTE ON FUNCTION seriesweb.retry_failed, seriesweb.add_rule,
                                 seriesweb.add_webhook, seriesweb.connect TO author;');

# pg_dump leaves an extension's members out of a dump; detached (in the
# catalog, for this comparison only) they are dumped like any object.  The
# installation's random id, the dump's random \restrict key and the
# CREATE EXTENSION line are what may differ.
sub schema_of
{
	my ($db) = @_;
	my $config = $node->safe_psql($db,
		"SELECT array(SELECT c::regclass::text FROM unnest(extconfig) c)::text || ' ' || extcondition::text
		   FROM pg_extension WHERE extname = 'seriesweb'");
	$node->safe_psql($db,
		"DELETE FROM pg_depend WHERE deptype = 'e' AND refclassid = 'pg_extension'::regclass
		    AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'seriesweb')");
	my ($out, $err) = run_command(['pg_dump', '--schema-only', '--no-owner', '-d', $node->connstr($db)]);
	die "pg_dump failed: $err" if $err ne '';
	$out =~ s/^\\(un)?restrict .*$//mg;
	$out =~ s/^(CREATE EXTENSION|COMMENT ON EXTENSION) .*$//mg;
	$out =~ s/DEFAULT '-?\d+'::bigint/DEFAULT '<installation>'::bigint/g;
	return "config: $config\n$out";
}
my $fresh = schema_of('fresh');
my $updated = schema_of('postgres');
like($fresh, qr/CREATE TABLE seriesweb\.deliveries/, 'the dump shows the schema');
ok($updated eq $fresh, 'an updated 0.1 has the schema of a fresh 0.2')
  or diag(difference($fresh, $updated));

# A unified diff of the two dumps, for the test's log.
sub difference
{
	my ($a, $b) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	PostgreSQL::Test::Utils::append_to_file("$dir/fresh.sql", $a);
	PostgreSQL::Test::Utils::append_to_file("$dir/updated.sql", $b);
	my ($out) = run_command(['diff', '-u', "$dir/fresh.sql", "$dir/updated.sql"]);
	return $out;
}

done_testing();
