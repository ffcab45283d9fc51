/*-------------------------------------------------------------------------
 *
 * advance.c
 *	  Move one user through a live series: reach a block, then arm what
 *	  follows it, in the moving transaction.
 *
 * An event moves users (matcher.c, in the inserting transaction), and so
 * does a timer that falls due (release.c, in the worker's).  Reaching a
 * block arms the blocks after it: a webhook fires at once (enqueue.c), a
 * wait is reached at once and holds the user until its timer is due
 * (timers.c), a tag block is reached at once and adds or removes its tag
 * (which what follows sees), a rule waits for a later event of the user,
 * except a rule with no event name, checked at once.  A timed rule also starts a timer:
 * reached in time by an event (which takes the timer), or, when the worker
 * takes it at the deadline, reached if it needs no event and holds then,
 * else its not-matched path is taken.  Every reach is one INSERT .. ON
 * CONFLICT on seriesweb.progress that returns a row only the first time, so
 * "each block at most once per user" holds under concurrency too.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "advance.h"
#include "catalog/pg_type.h"
#include "counters.h"
#include "enqueue.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "plans.h"
#include "timers.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* The user and company as sw_ctx_set_user reads them; at 0.1, no tags. */
/* clang-format off */
#define LOAD_USER_SQL(tags) \
	"SELECT u.email, u.name, u.attributes, u.company_id, c.name, c.attributes, " tags \
	"  FROM seriesweb.users u " \
	"  LEFT JOIN seriesweb.companies c ON c.company_id = u.company_id " \
	" WHERE u.user_id = $1"

static const char load_user_sql[] =
	LOAD_USER_SQL("to_jsonb(u.tags)");
static const char load_user_0_1_sql[] =
	LOAD_USER_SQL("NULL::jsonb");

static const char entered_sql[] =
	"SELECT count(*) FROM seriesweb.progress "
	" WHERE user_id = $1 AND block_id = ANY ($2) AND reached_at IS NOT NULL";

static const char arm_sql[] =
	"INSERT INTO seriesweb.progress (block_id, user_id) VALUES ($1, $2) "
	"ON CONFLICT (block_id, user_id) DO NOTHING";

static const char tag_sql[] =
	"UPDATE seriesweb.users "
	"   SET tags = CASE WHEN $3 THEN array_remove(tags, $2) ELSE tags || $2 END "
	" WHERE user_id = $1 AND ($2 = ANY (tags)) = $3 "
	"RETURNING to_jsonb(tags)";
/* clang-format on */

static SPIPlanPtr load_user_plan;
static SPIPlanPtr load_user_0_1_plan;
static SPIPlanPtr entered_plan;
static SPIPlanPtr arm_plan;
static SPIPlanPtr tag_plan;

void
sw_advance_load_user(const SwCache *cache, SwContext *ctx)
{
	static const Oid argtypes[1] = {TEXTOID};
	Datum			 arg = CStringGetTextDatum(ctx->user_id);
	MemoryContext	 cxt = CurrentMemoryContext;
	SPIPlanPtr		 plan = cache->at_0_2 ? sw_plan(&load_user_plan, load_user_sql, 1, argtypes)
										  : sw_plan(&load_user_0_1_plan, load_user_0_1_sql, 1, argtypes);

	sw_execute(plan, &arg, NULL, false, 0, SPI_OK_SELECT);
	MemoryContextSwitchTo(cxt);
	if (SPI_processed == 1)
		sw_ctx_set_user(ctx, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
}

/* Is this the user's first entry rule reached in the block's series? */
static bool
is_first_entry(SwAdvance *a, SwBlock *block)
{
	static const Oid argtypes[2] = {TEXTOID, INT4ARRAYOID};
	SwSeries		*s = block->series;
	Datum			 values[2];
	Datum			*ids;
	int64			 reached;
	bool			 isnull;

	if (s->nentry <= 1)
		return true;
	ids = palloc(sizeof(Datum) * s->nentry);
	for (int i = 0; i < s->nentry; i++)
		ids[i] = Int32GetDatum(s->entry_ids[i]);
	values[0] = CStringGetTextDatum(a->ctx.user_id);
	values[1] = PointerGetDatum(construct_array(ids, s->nentry, INT4OID, 4, true, TYPALIGN_INT));
	sw_plan(&entered_plan, entered_sql, 2, argtypes);
	sw_execute(entered_plan, values, NULL, false, 0, SPI_OK_SELECT);
	MemoryContextSwitchTo(a->cxt);
	reached =
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return reached == 1;
}

static void
count(SwAdvance *a, SwBlock *block, int reached, int waiting, int not_matched)
{
	if (reached != 0)
		sw_counts_add(a->counts, block->block_id, block->series->series_id, 0, reached, 0);
	if (waiting != 0 || not_matched != 0)
		sw_counts_add_timed(a->counts, block->block_id, block->series->series_id, waiting,
							not_matched);
}

/* A rule with no event name is checked when armed, and at its deadline. */
static bool
holds_without_event(SwAdvance *a, SwBlock *rule)
{
	if (rule->event_name != NULL)
		return false;
	sw_ctx_at_block(&a->ctx, rule);
	return sw_filter_eval(rule->filter, &a->ctx);
}

/*
 * Arm a rule after a reached block.  True when it is reached at once too.
 * A timed rule that is not starts its timer.
 */
static bool
arm_rule(SwAdvance *a, SwBlock *rule)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 values[2];
	bool			 holds = holds_without_event(a, rule);

	if (rule->timer != NULL && !holds)
	{
		if (sw_timer_arm_rule(rule, &a->ctx))
			count(a, rule, 0, 1, 0);
		MemoryContextSwitchTo(a->cxt);
		return false;
	}
	values[0] = Int32GetDatum(rule->block_id);
	values[1] = CStringGetTextDatum(a->ctx.user_id);
	sw_plan(&arm_plan, arm_sql, 2, argtypes);
	sw_execute(arm_plan, values, NULL, false, 0, SPI_OK_INSERT);
	MemoryContextSwitchTo(a->cxt);
	return holds;
}

/* The user reaches a wait after a reached block, and waits there. */
static void
start_wait(SwAdvance *a, SwBlock *wait)
{
	if (sw_timer_start_wait(wait, &a->ctx))
		count(a, wait, 1, 1, 0);
	MemoryContextSwitchTo(a->cxt);
}

/*
 * The user reached a tag block: add or remove its tag, and see the user's
 * tags as they are now.
 */
static void
apply_tag(SwAdvance *a, SwBlock *tag)
{
	static const Oid argtypes[3] = {TEXTOID, TEXTOID, BOOLOID};
	Datum			 args[3];

	args[0] = CStringGetTextDatum(a->ctx.user_id);
	args[1] = CStringGetTextDatum(tag->tag);
	args[2] = BoolGetDatum(tag->tag_removes);
	sw_plan(&tag_plan, tag_sql, 3, argtypes);
	sw_execute(tag_plan, args, NULL, false, 0, SPI_OK_UPDATE_RETURNING);
	MemoryContextSwitchTo(a->cxt);
	if (SPI_processed == 1)
		a->ctx.user_tags = sw_col_jsonb(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
}

/* Record that the user reached a rule, webhook or tag; false if they had already. */
static bool
reach_block(SwAdvance *a, SwBlock *block)
{
	bool reached;

	if (block->kind == SW_BLOCK_WEBHOOK)
	{
		sw_ctx_at_block(&a->ctx, block);
		reached = sw_enqueue(a->cache, block, &a->ctx, a->counts);
	}
	else
		reached = sw_reach(block, &a->ctx);
	MemoryContextSwitchTo(a->cxt);
	if (reached && block->kind == SW_BLOCK_TAG)
		apply_tag(a, block);
	return reached;
}

/* A block to reach, or (after a reached block) to arm first. */
typedef struct Step
{
	SwBlock *block;
	bool	 arm;
} Step;

static List *
push_step(List *stack, SwBlock *block, bool arm_first)
{
	Step *step = palloc(sizeof(Step));

	step->block = block;
	step->arm = arm_first;
	return lappend(stack, step);
}

/* Arm the blocks of a path, pushed last first so the first is followed first. */
static List *
push_path(List *stack, SwBlock **path, int n)
{
	for (int i = n - 1; i >= 0; i--)
		stack = push_step(stack, path[i], true);
	return stack;
}

/*
 * Run the steps, depth first in connection order.  An explicit stack
 * rather than recursion: a series may be a chain of thousands of blocks,
 * and running out of C stack would fail the application's INSERT.
 */
static void
run_steps(SwAdvance *a, List *stack)
{
	while (stack != NIL)
	{
		Step	*step = llast(stack);
		SwBlock *block = step->block;

		stack = list_delete_last(stack);
		CHECK_FOR_INTERRUPTS();
		if (step->arm && block->kind == SW_BLOCK_WAIT)
		{
			start_wait(a, block);
			continue;
		}
		if (step->arm && block->kind == SW_BLOCK_RULE && !arm_rule(a, block))
			continue;
		if (!reach_block(a, block))
			continue;
		sw_counts_add(a->counts, block->block_id, block->series->series_id,
					  block->is_entry && is_first_entry(a, block) ? 1 : 0, 1, 0);
		stack = push_path(stack, block->next, block->nnext);
	}
}

void
sw_advance_reach(SwAdvance *a, SwBlock *rule)
{
	if (rule->timer != NULL)
	{
		bool taken = sw_timer_take(rule, &a->ctx);

		MemoryContextSwitchTo(a->cxt);
		if (!taken)
			return;
		count(a, rule, 0, -1, 0);
	}
	run_steps(a, push_step(NIL, rule, false));
}

void
sw_advance_release(SwAdvance *a, SwBlock *timed)
{
	count(a, timed, 0, -1, 0);
	if (timed->kind == SW_BLOCK_WAIT)
		run_steps(a, push_path(NIL, timed->next, timed->nnext));
	else if (holds_without_event(a, timed))
		run_steps(a, push_step(NIL, timed, false));
	else
	{
		sw_timer_not_matched(timed, a->ctx.user_id);
		MemoryContextSwitchTo(a->cxt);
		count(a, timed, 0, 0, 1);
		run_steps(a, push_path(NIL, timed->not_matched, timed->nnot_matched));
	}
}
