#
# 100_search_path.pl - nothing a role without superuser writes ever runs in
# the worker or with the extension owner's rights.
#
# A role that may create schemas plants look-alike operators and functions
# (ones that match seriesweb's expressions more exactly than pg_catalog's
# polymorphic or coercing ones) in public and in a schema named after the
# worker's role, so that the default search_path "$user", public finds
# them.  Each writes a row into a trap table when it runs.  First the trap
# is shown to work in a plain superuser session; then events are inserted
# (one row, many rows, COPY), delivered, failed, retried, purged and tested
# with test_webhook and preview, and the trap stays empty.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('search_path');

sub sql { return $node->safe_psql('postgres', shift) }

sql('CREATE EXTENSION seriesweb');
my $super = sql("SELECT rolname FROM pg_roles WHERE oid = 10");
sql("CREATE ROLE mallory LOGIN; GRANT CREATE ON DATABASE postgres TO mallory;
     GRANT CREATE ON SCHEMA public TO mallory;");

# The traps, in public and in the schema "$user" names for the worker.
my $traps = '';
for my $schema ('public', qq{"$super"})
{
	$traps .= <<"EOT";
CREATE FUNCTION $schema.trap_cat(text, bigint) RETURNS text LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO public.trap VALUES (current_user, 'text || bigint'); RETURN \$1 || \$2::text; END \$\$;
CREATE OPERATOR $schema.|| (LEFTARG = text, RIGHTARG = bigint, FUNCTION = $schema.trap_cat);
CREATE FUNCTION $schema.trap_cat4(text, integer) RETURNS text LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO public.trap VALUES (current_user, 'text || integer'); RETURN \$1 || \$2::text; END \$\$;
CREATE OPERATOR $schema.|| (LEFTARG = text, RIGHTARG = integer, FUNCTION = $schema.trap_cat4);
CREATE FUNCTION $schema.trap_mul(integer, interval) RETURNS interval LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO public.trap VALUES (current_user, 'integer * interval'); RETURN \$1::float8 * \$2; END \$\$;
CREATE OPERATOR $schema.* (LEFTARG = integer, RIGHTARG = interval, FUNCTION = $schema.trap_mul);
CREATE FUNCTION $schema.make_interval(secs integer) RETURNS interval LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO public.trap VALUES (current_user, 'make_interval'); RETURN secs * interval '1s'; END \$\$;
EOT
	for my $type ('bigint', 'integer', 'text', 'timestamptz', 'double precision')
	{
		$traps .= <<"EOT";
CREATE FUNCTION $schema.unnest(a $type\[]) RETURNS SETOF $type LANGUAGE plpgsql AS
  \$\$ BEGIN INSERT INTO public.trap VALUES (current_user, 'unnest($type\[])');
         RETURN QUERY SELECT pg_catalog.unnest(a); END \$\$;
EOT
	}
}
$node->safe_psql('postgres', <<"EOT", extra_params => ['-U', 'mallory']);
CREATE TABLE public.trap (who text, what text, query text DEFAULT current_query());
GRANT INSERT ON public.trap TO PUBLIC;
CREATE SCHEMA "$super";
$traps
EOT

sub trapped { return sql("SELECT coalesce(string_agg(DISTINCT who || ': ' || what, ', '), '') FROM public.trap") }

# The trap works: a superuser's session with the default search_path runs it.
sql("SELECT 'msg_' || 1::bigint, x FROM unnest(ARRAY[1::bigint]) x");
like(trapped(), qr/$super: text \|\| bigint/, 'the trap catches a superuser with the default search_path');
sql('TRUNCATE public.trap');

# --- Everything seriesweb does -----------------------------------------------
# (This test's own statements cast where the traps would catch them.)
set_route($recv, '/ok', { status => 200 });
set_route($recv, '/bad', { status => 500 });
my $ok = webhook_series($node, 'ok', $recv->url('/ok/{user.id}'),
	body => '{"who": "{user.id}", "n": "{event.n}", "company": "{company.name | fallback: \"none\"}"}');
my $bad = webhook_series($node, 'bad', $recv->url('/bad'));
sql("UPDATE seriesweb.blocks SET secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' WHERE block_id = $ok");

sql("INSERT INTO seriesweb.events (user_id, name, properties) VALUES ('one', 'ok', '{\"n\": 1}')");
sql("INSERT INTO seriesweb.events (user_id, name, properties)
     SELECT 'many' || i::text, 'ok', jsonb_build_object('n', i) FROM generate_series(1, 20) i");
sql("COPY seriesweb.events (user_id, name) FROM PROGRAM 'printf \"copy1\\tok\\ncopy2\\tok\\ncopy3\\tbad\\n\"'");
wait_status($node, $ok, 'sent', 23, 'the deliveries to be sent');
wait_status($node, $bad, 'failed', 1, 'the failing delivery to fail');

is(sql("SELECT seriesweb.retry_failed($bad)"), '1', 'retry_failed');
wait_status($node, $bad, 'failed', 1, 'the retried delivery to fail again');
sql("SELECT seriesweb.retry_delivery(delivery_id) FROM seriesweb.deliveries WHERE block_id = $bad");
wait_status($node, $bad, 'failed', 1, 'the delivery retried once more to fail again');
wait_until($node, "SELECT attempts FROM seriesweb.deliveries WHERE block_id = $bad", '9',
	'nine attempts in all');

# test_webhook and preview, called by a superuser whose search_path finds the traps.
like(sql("SET search_path = \"\$user\", public; SELECT status_code FROM seriesweb.test_webhook($ok, 'one')"),
	qr/^200$/, 'test_webhook');
like(sql("SET search_path = \"\$user\", public; SELECT url FROM seriesweb.preview($ok, 'one')"),
	qr{/ok/one$}, 'preview');

# The purge runs when the worker starts: old finished deliveries go.
sql("UPDATE seriesweb.deliveries SET finished_at = now() - interval '60 days' WHERE block_id = $ok");
sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE backend_type = 'seriesweb worker'");
wait_until($node, "SELECT count(*) FROM seriesweb.deliveries WHERE block_id = $ok", '0',
	'the purge of old deliveries');
is(sql("SELECT count(*) FROM seriesweb.delivery_attempts a
         WHERE NOT EXISTS (SELECT FROM seriesweb.deliveries d WHERE d.delivery_id = a.delivery_id)"),
	'0', 'the purge took their attempts too');
is(sql("SELECT sent FROM seriesweb.block_stats WHERE block_id = $ok"), '23', 'counts survive the purge');

is(trapped(), '', 'no planted operator or function ever ran') or diag(sql('SELECT query FROM public.trap'));

done_testing();
