#
# 060_known_users.pl - the known-users set is shared: a user whose creation
# committed is known to every other session (its events ask the database
# nothing), and never after it is deleted, also when the deletion races with
# a session that has just seen the user.  Rolled-back creations and REPEATABLE
# READ transactions publish nothing.  Autovacuum is off: its relcache
# invalidations would empty the set at any moment.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use SeriesWebTest;

my $node = new_node('known_users', conf => "autovacuum = off\nmax_prepared_transactions = 2\n");

sub sql { return $node->safe_psql('postgres', shift) }

# Scans of seriesweb.users by an event statement of a new session:
# 0 when the set answered, more when the trigger asked the database.
sub lookups
{
	my ($user, $prefix) = @_;
	$prefix //= '';
	return sql(
		"BEGIN; $prefix INSERT INTO seriesweb.events (user_id, name) VALUES ('$user', 'page-view');
		 SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_xact_user_tables
		  WHERE relid = 'seriesweb.users'::regclass;
		 COMMIT;");
}

sub user_exists
{
	return sql("SELECT count(*) FROM seriesweb.users WHERE user_id = '$_[0]'");
}

sql('CREATE EXTENSION seriesweb');

cmp_ok(lookups('alice'), '>', 0, 'a new user is looked up (and created)');
is(user_exists('alice'), '1', 'the event created the user');
is(lookups('alice'), '0', 'another session knows the user without asking');

sql("BEGIN; INSERT INTO seriesweb.events (user_id, name) VALUES ('bob', 'page-view'); ROLLBACK");
cmp_ok(lookups('bob'), '>', 0, 'a creation that rolled back is not known');
is(user_exists('bob'), '1', 'the next event created the user');

sql("INSERT INTO seriesweb.users (user_id, email) VALUES ('carol', 'carol\@example.com')");
cmp_ok(lookups('carol'), '>', 0, 'a user inserted directly is looked up once');
is(lookups('carol'), '0', 'and known from then on');

sql("DELETE FROM seriesweb.users WHERE user_id = 'alice'");
cmp_ok(lookups('alice'), '>', 0, 'a deleted user is no longer known');
is(user_exists('alice'), '1', 'its next event created it again');

cmp_ok(lookups('dave', 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;'),
	'>', 0, 'a REPEATABLE READ event creates its user');
cmp_ok(lookups('dave'), '>', 0, 'but does not publish it (its snapshot may predate a deletion)');
is(lookups('dave'), '0', 'a READ COMMITTED event does');

# A deletion in progress while another session sees the user: that session
# asks (the deletion moved the set on), still sees frank and publishes him;
# the deletion's commit outdates that.
sql("INSERT INTO seriesweb.users (user_id) VALUES ('frank')");
cmp_ok(lookups('frank'), '>', 0, 'frank is looked up once');
is(lookups('frank'), '0', 'then known');
my $deleter = $node->background_psql('postgres');
$deleter->query_safe("BEGIN; DELETE FROM seriesweb.users WHERE user_id = 'frank'");
cmp_ok(lookups('frank'), '>', 0, 'a deletion in progress makes sessions ask');
is(user_exists('frank'), '1', 'frank still exists for them');
$deleter->query_safe('COMMIT');
$deleter->quit;
is(user_exists('frank'), '0', 'the deletion committed');
cmp_ok(lookups('frank'), '>', 0, 'what was published meanwhile is outdated');
is(user_exists('frank'), '1', 'so the next event creates frank again');

# A READ COMMITTED transaction that ensured a user, then sees it deleted by
# another: its next event creates the user again.
sql("INSERT INTO seriesweb.users (user_id) VALUES ('hank')");
my $session = $node->background_psql('postgres');
$session->query_safe("BEGIN; INSERT INTO seriesweb.events (user_id, name) VALUES ('hank', 'page-view')");
sql("DELETE FROM seriesweb.users WHERE user_id = 'hank'");
$session->query_safe("INSERT INTO seriesweb.events (user_id, name) VALUES ('hank', 'page-view'); COMMIT");
$session->quit;
is(user_exists('hank'), '1', 'a user deleted during a transaction that had ensured it is created again');

# Ids too long for a slot are always asked for, and work.
my $long = 'x' x 200;
cmp_ok(lookups($long), '>', 0, 'a long id is looked up');
cmp_ok(lookups($long), '>', 0, 'every time');
is(user_exists($long), '1', 'and created once');

# A prepared transaction that deletes users: its COMMIT PREPARED runs no
# callback, so the set turns itself off.
lookups('alice');
is(lookups('alice'), '0', 'alice is known');
sql("BEGIN; DELETE FROM seriesweb.users WHERE user_id = 'carol'; PREPARE TRANSACTION 'del'");
sql("COMMIT PREPARED 'del'");
cmp_ok(lookups('alice'), '>', 0, 'after a prepared deletion the set is off');
ok($node->log_contains('known-users memory turned off until the server restarts'),
	'and the server log says so');

# Turned off, events still create their users.
$node->append_conf('postgresql.conf', "seriesweb.known_users = 0\n");
$node->restart;
cmp_ok(lookups('alice'), '>', 0, 'with seriesweb.known_users = 0 every event asks');
cmp_ok(lookups('grace'), '>', 0, 'a new user too');
is(user_exists('grace'), '1', 'and creates it');

$node->stop;
done_testing();
