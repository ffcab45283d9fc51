#
# 170_series_in_time.pl - waits, timed rules and their not-matched paths,
# with the worker releasing timers.
#
# The onboarding journey: a user signs up, waits two seconds, then has three
# seconds to create a project.  Alice creates one in time and Slack hears of
# it; Bob never does and Carol created hers before the wait was over (too
# early: a rule is reached by a later event), so the CRM hears of them when
# the deadline passes.  Then: a webhook after a wait renders the user as they
# are at the release; a paused series holds its due waits until it is live
# again; a timed rule with no event name is checked when armed, at each later
# event and at the deadline; an event racing the deadline from another
# session gives each user exactly one path; and timers that fall due while
# the server is down, or while an immediate stop interrupts their release,
# are released exactly once after the restart.
#
use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use SeriesWebTest;

my $recv = start_receiver();
my $node = new_node('main');

sub sql { return $node->safe_psql('postgres', shift) }
sub url { return $recv->url(shift) }

set_route($recv, "/$_", { status => 200 })
  for qw(slack crm later paused upgraded not-upgraded raced-in raced-out down together-a together-b);

sql('CREATE EXTENSION seriesweb');

# ---- the onboarding journey ----
my ($series, $signup, $wait, $project, $slack, $crm) = split /\|/, sql(qq{
	WITH s AS (SELECT seriesweb.create_series('Onboarding') AS s),
	r AS (SELECT s, seriesweb.add_rule(s, 'signed up', 'signup') AS r FROM s),
	w AS (SELECT s, r, seriesweb.add_wait(s, 'two seconds', r, '2 seconds') AS w FROM r),
	t AS (SELECT s, r, w, seriesweb.add_rule(s, 'created a project', 'project-created',
	                                         after => w, match_within => '3 seconds') AS t FROM w)
	SELECT s, r, w, t,
	       seriesweb.add_webhook(s, 'tell slack', '@{[url('/slack')]}', after => t,
	                             body => '{"user": "{user.id}", "plan": "{user.plan}"}'),
	       seriesweb.add_webhook(s, 'tell the crm', '@{[url('/crm')]}', after => t,
	                             path => 'not_matched', body => '{"user": "{user.id}"}')
	  FROM t});
sql("SELECT seriesweb.set_live($series)");

is(sql("SELECT path FROM seriesweb.connections WHERE from_block = $project ORDER BY to_block"),
	"matched\nnot_matched", 'the timed rule has a matched and a not-matched path');

sql(q{INSERT INTO seriesweb.users (user_id, attributes)
      VALUES ('alice', '{"plan": "free"}'), ('bob', '{}'), ('carol', '{}')});
sql(q{INSERT INTO seriesweb.events (user_id, name) VALUES ('alice', 'signup'), ('bob', 'signup'), ('carol', 'signup')});
sql(q{INSERT INTO seriesweb.events (user_id, name) VALUES ('carol', 'project-created')});
is(sql("SELECT reached || '/' || waiting FROM seriesweb.block_stats WHERE block_id = $wait"),
	'3/3', 'the wait is reached at once and holds the three users');

wait_until($node, "SELECT count(*) = 3 FROM seriesweb.timers WHERE block_id = $project",
	't', 'the wait to release its users onto the timed rule');
my $release_late = sql(qq{
	SELECT max(extract(epoch FROM t.armed_at - (w.reached_at + interval '2 seconds')))
	  FROM seriesweb.progress w JOIN seriesweb.progress t USING (user_id)
	 WHERE w.block_id = $wait AND t.block_id = $project});
cmp_ok($release_late, '>=', 0, 'no wait is released before it is due');
cmp_ok($release_late, '<', 1.5, "each wait is released within a second or so of its due time ($release_late s)");
is(sql("SELECT waiting || '/' || reached FROM seriesweb.block_stats WHERE block_id = $wait"),
	'0/3', 'the wait holds nobody once released');
is(sql("SELECT waiting FROM seriesweb.block_stats WHERE block_id = $project"),
	'3', 'the timed rule counts the users armed on it as waiting');

sql(q{UPDATE seriesweb.users SET attributes = '{"plan": "pro"}' WHERE user_id = 'alice'});
sql(q{INSERT INTO seriesweb.events (user_id, name) VALUES ('alice', 'project-created')});
my $slack_reqs = wait_for_requests($recv, '/slack', 1);
is(scalar(@$slack_reqs), 1, 'Slack hears of the user who created a project in time');
like($slack_reqs->[0]{body}, qr/"user":\s*"alice".*"plan":\s*"pro"/s,
	'with the values at the time it fired');

my $crm_reqs = wait_for_requests($recv, '/crm', 2);
is(join(',', sort map { /"user":\s*"(\w+)"/ ? $1 : '?' } map { $_->{body} } @$crm_reqs),
	'bob,carol', 'the CRM hears of the users who did not, once the deadline passed');
my $deadline_late = sql(qq{
	SELECT max(extract(epoch FROM p.not_matched_at - (p.armed_at + interval '3 seconds')))
	  FROM seriesweb.progress p WHERE p.block_id = $project AND p.not_matched_at IS NOT NULL});
cmp_ok($deadline_late, '>=', 0, 'no deadline is taken before it passes');
cmp_ok($deadline_late, '<', 1.5, "deadlines are taken within a second or so ($deadline_late s)");
is(sql("SELECT reached || '/' || waiting || '/' || not_matched FROM seriesweb.block_stats WHERE block_id = $project"),
	'1/0/2', 'block_stats: reached 1, waiting 0, not matched 2');
sql(q{INSERT INTO seriesweb.events (user_id, name) VALUES ('bob', 'project-created')});
is(sql("SELECT count(*) FROM seriesweb.deliveries WHERE block_id IN ($slack, $crm) AND user_id = 'bob'"),
	'1', 'an event after the deadline changes nothing: one path per user');

# ---- a webhook after a wait renders the user as they are at the release ----
my $later = sql(qq{
	SELECT seriesweb.add_webhook(s, 'later', '@{[url('/later')]}',
	         after => seriesweb.add_wait(s, 'a second', seriesweb.add_rule(s, 'joined', 'joined'), '1 second'),
	         body => '{"plan": "{user.plan}", "event": "{event.name | fallback: \\"none\\"}"}')
	  FROM seriesweb.create_series('Later') AS s});
sql(q{SELECT seriesweb.set_live(series_id) FROM seriesweb.series WHERE name = 'Later'});
sql(q{INSERT INTO seriesweb.users (user_id, attributes) VALUES ('dave', '{"plan": "free"}');
      INSERT INTO seriesweb.events (user_id, name) VALUES ('dave', 'joined');
      UPDATE seriesweb.users SET attributes = '{"plan": "team"}' WHERE user_id = 'dave'});
my $later_reqs = wait_for_requests($recv, '/later', 1);
like($later_reqs->[0]{body} // '', qr/"plan":\s*"team".*"event":\s*"none"/s,
	'a webhook after a wait takes the values at the release (and has no event)');

# ---- a paused series holds its due waits ----
my ($paused_series) = sql(qq{
	SELECT s FROM seriesweb.create_series('Paused') AS s,
	       seriesweb.add_webhook(s, 'paused', '@{[url('/paused')]}',
	         after => seriesweb.add_wait(s, 'a second', seriesweb.add_rule(s, 'came', 'came'), '1 second'))});
sql("SELECT seriesweb.set_live($paused_series)");
sql(q{INSERT INTO seriesweb.events (user_id, name) VALUES ('erin', 'came')});
sql("SELECT seriesweb.pause($paused_series)");
my $due = sql(q{SELECT extract(epoch FROM max(due_at)) FROM seriesweb.timers t
                 JOIN seriesweb.blocks b USING (block_id) JOIN seriesweb.series s USING (series_id)
                WHERE s.name = 'Paused'});
# The condition waited for is the clock: a second past the due time.
wait_until($node, "SELECT extract(epoch FROM clock_timestamp()) > $due + 1", 't', 'the due time to pass');
is(request_count($recv, '/paused'), 0, 'a paused series holds its due waits');
is(sql(q{SELECT count(*) FROM seriesweb.timers t JOIN seriesweb.blocks b USING (block_id)
          JOIN seriesweb.series s USING (series_id) WHERE s.name = 'Paused'}), '1',
	'the timer is still there');
sql("SELECT seriesweb.set_live($paused_series)");
is(scalar(@{ wait_for_requests($recv, '/paused', 1) }), 1, 'set_live releases them');

# ---- a timed rule with no event name ----
my ($upg_series, $upg_rule) = split /\|/, sql(qq{
	WITH s AS (SELECT seriesweb.create_series('Upgrade') AS s),
	t AS (SELECT s, seriesweb.add_rule(s, 'is pro', NULL,
	             '[{"attribute": "user.plan", "op": "eq", "value": "pro"}]',
	             after => seriesweb.add_rule(s, 'started trial', 'trial'), match_within => '2 seconds') AS t FROM s)
	SELECT s, t, seriesweb.add_webhook(s, 'upgraded', '@{[url('/upgraded')]}', after => t, body => '{"u": "{user.id}"}'),
	       seriesweb.add_webhook(s, 'not upgraded', '@{[url('/not-upgraded')]}', after => t,
	                             path => 'not_matched', body => '{"u": "{user.id}"}')
	  FROM t});
sql("SELECT seriesweb.set_live($upg_series)");
sql(q{INSERT INTO seriesweb.users (user_id, attributes) VALUES
        ('p1', '{"plan": "pro"}'), ('p2', '{"plan": "free"}'), ('p3', '{"plan": "free"}'), ('p4', '{"plan": "free"}');
      INSERT INTO seriesweb.events (user_id, name) SELECT u, 'trial' FROM unnest(ARRAY['p1', 'p2', 'p3', 'p4']) u});
is(sql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM seriesweb.progress WHERE block_id = $upg_rule AND reached_at IS NOT NULL"),
	'p1', 'a timed rule with no event name is checked when armed');
sql(q{UPDATE seriesweb.users SET attributes = '{"plan": "pro"}' WHERE user_id IN ('p2', 'p3');
      INSERT INTO seriesweb.events (user_id, name) VALUES ('p2', 'pageview')});
is(sql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM seriesweb.progress WHERE block_id = $upg_rule AND reached_at IS NOT NULL"),
	'p1,p2', '... at each later event of the user');
my $upgraded = wait_for_requests($recv, '/upgraded', 3);
my $not_upgraded = wait_for_requests($recv, '/not-upgraded', 1);
is(join(',', sort map { /"u":\s*"(\w+)"/ ? $1 : '?' } map { $_->{body} } @$upgraded),
	'p1,p2,p3', '... and at the deadline, with the attributes as they are then');
is(join(',', map { /"u":\s*"(\w+)"/ ? $1 : '?' } map { $_->{body} } @$not_upgraded),
	'p4', 'the user it never held for takes the not-matched path');

# ---- an event racing the deadline, from another session ----
my $n_race = 1000;
my ($race_series, $race_rule, $race_in, $race_out) = split /\|/, sql(qq{
	WITH s AS (SELECT seriesweb.create_series('Race') AS s),
	t AS (SELECT s, seriesweb.add_rule(s, 'answered', 'answer',
	             after => seriesweb.add_rule(s, 'asked', 'ask'), match_within => '1 second') AS t FROM s)
	SELECT s, t, seriesweb.add_webhook(s, 'in', '@{[url('/raced-in')]}', after => t),
	       seriesweb.add_webhook(s, 'out', '@{[url('/raced-out')]}', after => t, path => 'not_matched')
	  FROM t});
sql("SELECT seriesweb.set_live($race_series)");
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'r' || i, 'ask' FROM generate_series(1, $n_race) i");
my $race_due = sql("SELECT extract(epoch FROM min(due_at)) FROM seriesweb.timers WHERE block_id = $race_rule");
# Answers one per transaction (about a millisecond each), from a little
# before the deadline on, while the worker takes the deadlines of those not
# answered yet.
wait_until($node, "SELECT extract(epoch FROM clock_timestamp()) > $race_due - 0.25", 't', 'the deadline to near');
my $answers = join('', map { "INSERT INTO seriesweb.events (user_id, name) VALUES ('r$_', 'answer');\n" } 1 .. $n_race);
my ($ans_out, $ans_err);
ok(IPC::Run::run(['psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres')],
		'<', \$answers, '>', \$ans_out, '2>', \$ans_err),
	'the answering session ran') or diag($ans_err);
wait_until($node, "SELECT count(*) = 0 FROM seriesweb.timers WHERE block_id = $race_rule", 't', 'every deadline to be taken');
is(sql("SELECT count(*) FROM seriesweb.progress WHERE block_id = $race_rule
         AND (reached_at IS NULL) = (not_matched_at IS NULL)"), '0',
	'each raced user took exactly one of the two paths');
is(sql("SELECT count(DISTINCT user_id) || '/' || count(*) FROM seriesweb.deliveries WHERE block_id IN ($race_in, $race_out)"),
	"$n_race/$n_race", 'one delivery per raced user, on one path or the other');
my ($in, $out) = split /\|/, sql("SELECT reached, not_matched FROM seriesweb.block_stats WHERE block_id = $race_rule");
is($in + $out, $n_race, "block_stats adds up: $in matched + $out not matched");
ok($in > 0 && $out > 0, 'the race had both outcomes') or diag("matched $in, not matched $out");

# ---- a wait followed only by webhooks releases its users together ----
# The worker moves such a batch with a statement or two rather than user by
# user: the outcome is the same.  Each user gets both deliveries, in order,
# rendered with their user, company and tags as they are at the release;
# a user deleted while waiting is released with their id alone; a webhook
# that cannot be rendered for one user fails for that user only, counted.
my ($tg_series, $tg_wait, $tg_a, $tg_b) = split /\|/, sql(qq{
	WITH s AS (SELECT seriesweb.create_series('Together') AS s),
	w AS (SELECT s, seriesweb.add_wait(s, 'a second', seriesweb.add_rule(s, 'met', 'met'), '1 second') AS w FROM s)
	SELECT s, w,
	       seriesweb.add_webhook(s, 'a', '@{[url('/together-a')]}', after => w,
	         body => '{"u": "{user.id}", "plan": "{user.plan | fallback: \\"-\\"}", "co": "{company.name | fallback: \\"-\\"}", "tag": "{user.tags.0 | fallback: \\"-\\"}", "event": "{event.name | fallback: \\"none\\"}"}'),
	       seriesweb.add_webhook(s, 'b', '@{[url('/together-b')]}', after => w,
	         headers => '{"Content-Type": "application/json", "X-User": "{user.name | fallback: \\"-\\"}"}', body => '{"u": "{user.id}"}')
	  FROM w});
sql("SELECT seriesweb.set_live($tg_series)");
sql(q{INSERT INTO seriesweb.companies (company_id, name) VALUES ('acme', 'Acme');
      INSERT INTO seriesweb.users (user_id, company_id, attributes) VALUES ('t1', 'acme', '{"plan": "free"}'), ('t2', NULL, '{}');
      INSERT INTO seriesweb.users (user_id, name) VALUES ('t3', E'Eve\r\nX-Admin: yes');
      INSERT INTO seriesweb.events (user_id, name) VALUES ('t1', 'met'), ('t2', 'met'), ('t3', 'met'), ('t4', 'met');
      UPDATE seriesweb.users SET attributes = '{"plan": "pro"}', tags = '{vip}' WHERE user_id = 't1';
      DELETE FROM seriesweb.users WHERE user_id = 't4'});
wait_until($node, "SELECT count(*) = 0 FROM seriesweb.timers WHERE block_id = $tg_wait", 't',
	'the wait to release its four users');
is(sql("SELECT string_agg(user_id || ':' || block_id, ',')
          FROM seriesweb.deliveries WHERE block_id IN ($tg_a, $tg_b) AND status = 'failed'"),
	"t3:$tg_b", 'only the webhook that cannot be rendered fails, for that user only');
is(sql("SELECT string_agg(user_id || ':' || block_id, ',' ORDER BY user_id, delivery_id)
          FROM seriesweb.deliveries WHERE block_id IN ($tg_a, $tg_b)"),
	"t1:$tg_a,t1:$tg_b,t2:$tg_a,t2:$tg_b,t3:$tg_a,t3:$tg_b,t4:$tg_a,t4:$tg_b",
	'each user reaches each webhook once, in order');
my %tg_bodies = map { /"u":\s*"(\w+)"/ ? ($1 => $_) : () } map { $_->{body} } @{ wait_for_requests($recv, '/together-a', 4) };
sub fields { my $body = shift // ''; return join(',', map { $body =~ /"$_":\s*"([^"]*)"/ ? $1 : '?' } qw(plan co tag event)) }
is(fields($tg_bodies{t1}), 'pro,Acme,vip,none',
	'with the user, company and tags at the release, and no event');
is(fields($tg_bodies{t2}), '-,-,-,none', 'a user without company or tags has none');
is(fields($tg_bodies{t4}), '-,-,-,none', 'a user deleted while waiting is released with their id alone');
is(sql("SELECT string_agg(title || ':' || reached || '/' || waiting || '/' || failed, ',' ORDER BY block_id)
          FROM seriesweb.block_stats WHERE series_id = $tg_series AND kind <> 'rule'"),
	'a second:4/0/0,a:4/0/0,b:4/0/1', 'block_stats counts each user once, and the failure');

# ---- timers due while the server is down, or while a release is cut short ----
my ($down_series, $down_wait, $down_hook) = split /\|/, sql(qq{
	WITH s AS (SELECT seriesweb.create_series('Down') AS s),
	w AS (SELECT s, seriesweb.add_wait(s, 'a second', seriesweb.add_rule(s, 'left', 'left'), '1 second') AS w FROM s)
	SELECT s, w, seriesweb.add_webhook(s, 'down', '@{[url('/down')]}', after => w, body => '{"u": "{user.id}"}') FROM w});
sql("SELECT seriesweb.set_live($down_series)");
sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'd' || i, 'left' FROM generate_series(1, 20) i");
$node->stop('immediate');
my $down_due = time() + 1.5;
# The condition is the clock: the waits fall due while the server is down.
Time::HiRes::usleep(50_000) while time() < $down_due;
$node->start;
wait_status($node, $down_hook, 'sent', 20, 'the waits due while down to be released and sent');
is(sql("SELECT count(*) FROM seriesweb.timers WHERE block_id = $down_wait"), '0',
	'waits due while the server was down are released at the next start');

sql("INSERT INTO seriesweb.events (user_id, name) SELECT 'e' || i, 'left' FROM generate_series(1, 3000) i");
wait_until($node, "SELECT count(*) > 0 FROM seriesweb.deliveries WHERE block_id = $down_hook AND user_id LIKE 'e%'",
	't', 'the release of 3,000 waits to begin');
$node->stop('immediate');
$node->start;
wait_until($node, "SELECT count(*) = 0 FROM seriesweb.timers WHERE block_id = $down_wait", 't',
	'every wait cut short by the stop to be released');
is(sql("SELECT count(*) || '/' || count(DISTINCT user_id) FROM seriesweb.deliveries
         WHERE block_id = $down_hook AND user_id LIKE 'e%'"), '3000/3000',
	'an immediate stop during a release loses no release and does none twice');
wait_status($node, $down_hook, 'sent', 3020, 'all of them to be sent');
is(sql("SELECT reached || '/' || waiting || '/' || sent FROM seriesweb.block_stats WHERE block_id = $down_wait"),
	'3020/0/0', 'the wait counted every user once');

done_testing();
