/*-------------------------------------------------------------------------
 *
 * timers.c
 *	  The rows of seriesweb.timers: a user held by a wait, or armed on a
 *	  timed rule, until its due time.
 *
 * A wait is reached at once and its timer started with the progress row, in
 * one statement; a timed rule's timer is started with the armed progress
 * row.  The row is the decision: whoever deletes it says what comes next.
 * An event that reaches a timed rule in time takes (deletes) the timer in
 * its own transaction; the worker locks due timers with SKIP LOCKED, moves
 * their users on and deletes them, in one short transaction per batch
 * (release.c).  Either waits for the other's row lock and then finds the
 * row gone, so each user takes exactly one path, and a crash at any point
 * rolls back to a timer still there.  A transaction that started a timer
 * due before any the worker knows wakes it at commit (wake.c); the worker
 * asks for the earliest due time with one index probe per timed block.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "plans.h"
#include "timers.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "wake.h"

/* clang-format off */
static const char start_wait_sql[] =
	"WITH reached AS ("
	"  INSERT INTO seriesweb.progress (block_id, user_id, reached_at, event_id) "
	"  VALUES ($1, $2, now(), NULLIF($3, 0)) "
	"  ON CONFLICT (block_id, user_id) DO NOTHING "
	"  RETURNING block_id, user_id) "
	"INSERT INTO seriesweb.timers (block_id, user_id, due_at) "
	"SELECT block_id, user_id, now() + $4 FROM reached "
	"    ON CONFLICT (block_id, user_id) DO UPDATE SET due_at = EXCLUDED.due_at "
	"RETURNING due_at";

static const char arm_rule_sql[] =
	"WITH armed AS ("
	"  INSERT INTO seriesweb.progress (block_id, user_id) VALUES ($1, $2) "
	"  ON CONFLICT (block_id, user_id) DO NOTHING "
	"  RETURNING block_id, user_id) "
	"INSERT INTO seriesweb.timers (block_id, user_id, due_at) "
	"SELECT block_id, user_id, now() + $3 FROM armed "
	"    ON CONFLICT (block_id, user_id) DO UPDATE SET due_at = EXCLUDED.due_at "
	"RETURNING due_at";

static const char take_sql[] =
	"DELETE FROM seriesweb.timers "
	" WHERE block_id = $1 AND user_id = $2 AND due_at > now()";

static const char not_matched_sql[] =
	"UPDATE seriesweb.progress SET not_matched_at = now() "
	" WHERE block_id = $1 AND user_id = $2 AND reached_at IS NULL";

static const char lock_due_sql[] =
	"SELECT user_id FROM seriesweb.timers "
	" WHERE block_id = $1 AND due_at <= now() "
	" ORDER BY due_at LIMIT $2 "
	"   FOR UPDATE SKIP LOCKED";

static const char delete_sql[] =
	"DELETE FROM seriesweb.timers WHERE block_id = $1 AND user_id = ANY ($2)";

static const char next_due_sql[] =
	"SELECT min(t.due_at) "
	"  FROM unnest($1) AS b (block_id) "
	" CROSS JOIN LATERAL ("
	"    SELECT due_at FROM seriesweb.timers t "
	"     WHERE t.block_id = b.block_id ORDER BY due_at LIMIT 1) t";
/* clang-format on */

static SPIPlanPtr start_wait_plan;
static SPIPlanPtr arm_rule_plan;
static SPIPlanPtr take_plan;
static SPIPlanPtr not_matched_plan;
static SPIPlanPtr lock_due_plan;
static SPIPlanPtr delete_plan;
static SPIPlanPtr next_due_plan;

/* After a statement that started a timer: wake the worker if it is early. */
static bool
timer_started(void)
{
	bool isnull;

	if (SPI_processed == 0)
		return false;
	sw_wake_for_timer_at_commit(DatumGetTimestampTz(
		SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)));
	SPI_freetuptable(SPI_tuptable);
	return true;
}

bool
sw_timer_start_wait(SwBlock *wait, const SwContext *ctx)
{
	static const Oid argtypes[4] = {INT4OID, TEXTOID, INT8OID, INTERVALOID};
	Datum			 args[4];

	args[0] = Int32GetDatum(wait->block_id);
	args[1] = CStringGetTextDatum(ctx->user_id);
	args[2] = Int64GetDatum(ctx->event_id);
	args[3] = IntervalPGetDatum(wait->timer);
	sw_plan(&start_wait_plan, start_wait_sql, 4, argtypes);
	sw_execute(start_wait_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	return timer_started();
}

bool
sw_timer_arm_rule(SwBlock *rule, const SwContext *ctx)
{
	static const Oid argtypes[3] = {INT4OID, TEXTOID, INTERVALOID};
	Datum			 args[3];

	args[0] = Int32GetDatum(rule->block_id);
	args[1] = CStringGetTextDatum(ctx->user_id);
	args[2] = IntervalPGetDatum(rule->timer);
	sw_plan(&arm_rule_plan, arm_rule_sql, 3, argtypes);
	sw_execute(arm_rule_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	return timer_started();
}

bool
sw_timer_take(SwBlock *rule, const SwContext *ctx)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 args[2];

	args[0] = Int32GetDatum(rule->block_id);
	args[1] = CStringGetTextDatum(ctx->user_id);
	sw_plan(&take_plan, take_sql, 2, argtypes);
	return sw_execute(take_plan, args, NULL, false, 0, SPI_OK_DELETE) == 1;
}

void
sw_timer_not_matched(SwBlock *rule, const char *user_id)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 args[2];

	args[0] = Int32GetDatum(rule->block_id);
	args[1] = CStringGetTextDatum(user_id);
	sw_plan(&not_matched_plan, not_matched_sql, 2, argtypes);
	sw_execute(not_matched_plan, args, NULL, false, 0, SPI_OK_UPDATE);
}

int
sw_timers_lock_due(SwBlock *block, int limit, char ***user_ids)
{
	static const Oid argtypes[2] = {INT4OID, INT4OID};
	Datum			 args[2];
	uint64			 n;

	args[0] = Int32GetDatum(block->block_id);
	args[1] = Int32GetDatum(limit);
	sw_plan(&lock_due_plan, lock_due_sql, 2, argtypes);
	n = sw_execute(lock_due_plan, args, NULL, false, 0, SPI_OK_SELECT);
	*user_ids = palloc(sizeof(char *) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		(*user_ids)[i] = sw_col_text(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
	return (int) n;
}

void
sw_timers_delete(SwBlock *block, char **user_ids, int n)
{
	static const Oid argtypes[2] = {INT4OID, TEXTARRAYOID};
	Datum			 args[2];
	Datum			*ids = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		ids[i] = CStringGetTextDatum(user_ids[i]);
	args[0] = Int32GetDatum(block->block_id);
	args[1] = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
	sw_plan(&delete_plan, delete_sql, 2, argtypes);
	sw_execute(delete_plan, args, NULL, false, 0, SPI_OK_DELETE);
}

TimestampTz
sw_timers_next_due(List *timed)
{
	static const Oid argtypes[1] = {INT4ARRAYOID};
	Datum			*ids = palloc(sizeof(Datum) * Max(list_length(timed), 1));
	Datum			 arg;
	ListCell		*lc;
	int				 n = 0;
	bool			 isnull;
	TimestampTz		 due;

	if (timed == NIL)
		return DT_NOEND;
	foreach (lc, timed)
		ids[n++] = Int32GetDatum(((SwBlock *) lfirst(lc))->block_id);
	arg = PointerGetDatum(construct_array(ids, n, INT4OID, 4, true, TYPALIGN_INT));
	sw_plan(&next_due_plan, next_due_sql, 1, argtypes);
	sw_execute(next_due_plan, &arg, NULL, true, 0, SPI_OK_SELECT);
	due = DatumGetTimestampTz(
		SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return isnull ? DT_NOEND : due;
}
