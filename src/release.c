/*-------------------------------------------------------------------------
 *
 * release.c
 *	  The worker's side of timers: users whose wait is over, or whose timed
 *	  rule's deadline has come, move on.
 *
 * The worker calls this when the earliest timer it knows of is due
 * (worker_loop.c).  One short transaction locks a batch of due timers of
 * the live series, oldest first, skipping those an event holds (that
 * event decides: timers.c); moves each user on with the same code as the
 * events trigger (advance.c), with the user's attributes as they are now
 * and no event; deletes the timers, flushes the counters, and reads when
 * the next timer falls due.  A wait followed only by webhooks that end the
 * series (the usual "wait, then tell someone") moves its whole batch at
 * once: one statement loads the users, one enqueues their deliveries
 * (sw_enqueue_many), with the same rows, counts and delivery ids as user by
 * user.  Webhooks so reached are enqueued in the same
 * transaction and wake the worker at its commit.  A crash before the commit
 * leaves every timer of the batch in place, due, for the next start: a
 * release happens exactly once.  Timers of a paused series are not looked
 * at (its blocks are not in the cache of live series) until it is live
 * again.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "advance.h"
#include "catalog/pg_type.h"
#include "counters.h"
#include "enqueue.h"
#include "executor/spi.h"
#include "plans.h"
#include "queue.h"
#include "release.h"
#include "timers.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/*
 * The users of a batch, in its order, as sw_advance_load_user reads one (a
 * user since deleted comes back with nothing but the id); at 0.1, no tags.
 */
/* clang-format off */
#define LOAD_USERS_SQL(tags) \
	"SELECT u.email, u.name, u.attributes, u.company_id, c.name, c.attributes, " tags \
	"  FROM unnest($1) WITH ORDINALITY AS r (user_id, i) " \
	"  LEFT JOIN seriesweb.users u ON u.user_id = r.user_id " \
	"  LEFT JOIN seriesweb.companies c ON c.company_id = u.company_id " \
	" ORDER BY r.i"

static const char load_users_sql[] =
	LOAD_USERS_SQL("to_jsonb(u.tags)");
static const char load_users_0_1_sql[] =
	LOAD_USERS_SQL("NULL::jsonb");
/* clang-format on */

static SPIPlanPtr load_users_plan;
static SPIPlanPtr load_users_0_1_plan;

/* The user whose timer on block the worker took moves on. */
static void
release_user(SwAdvance *a, SwBlock *block, const char *user_id)
{
	MemoryContextReset(a->cxt);
	MemoryContextSwitchTo(a->cxt);
	memset(&a->ctx, 0, sizeof(a->ctx));
	a->ctx.user_id = pstrdup(user_id);
	sw_advance_load_user(a->cache, &a->ctx);
	sw_advance_release(a, block);
}

/* users[i] is user_ids[i] as they are now, without an event; in cxt. */
static void
load_users(const SwCache *cache, char **user_ids, int n, SwContext *users, MemoryContext cxt)
{
	static const Oid argtypes[1] = {TEXTARRAYOID};
	Datum			*ids = palloc(sizeof(Datum) * n);
	Datum			 arg;
	SPIPlanPtr		 plan = cache->at_0_2
								? sw_plan(&load_users_plan, load_users_sql, 1, argtypes)
								: sw_plan(&load_users_0_1_plan, load_users_0_1_sql, 1, argtypes);

	for (int i = 0; i < n; i++)
		ids[i] = CStringGetTextDatum(user_ids[i]);
	arg = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));
	if (sw_execute(plan, &arg, NULL, false, 0, SPI_OK_SELECT) != n)
		elog(ERROR, "seriesweb: loading %d released users returned %llu rows", n,
			 (unsigned long long) SPI_processed);
	MemoryContextSwitchTo(cxt);
	for (int i = 0; i < n; i++)
	{
		memset(&users[i], 0, sizeof(SwContext));
		users[i].user_id = user_ids[i];
		sw_ctx_set_user(&users[i], SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The users whose timer on wait the worker took move on, when every block
 * after it is a webhook that ends the series: as sw_advance_release would
 * one by one (they leave the wait; each webhook is reached, counted, and its
 * delivery rendered and enqueued, in the same order), with two statements.
 */
static void
release_to_webhooks(SwAdvance *a, SwBlock *wait, char **user_ids, int n)
{
	SwContext *users;
	SwReach	  *reach;
	int		   nreach = 0;

	MemoryContextReset(a->cxt);
	MemoryContextSwitchTo(a->cxt);
	users = palloc(sizeof(SwContext) * n);
	reach = palloc(sizeof(SwReach) * Max(n * wait->nnext, 1));
	load_users(a->cache, user_ids, n, users, a->cxt);
	sw_counts_add_timed(a->counts, wait->block_id, wait->series->series_id, -n, 0);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < wait->nnext; j++)
		{
			reach[nreach].block = wait->next[j];
			reach[nreach].ctx = &users[i];
			nreach++;
		}
	if (nreach > 0)
		sw_enqueue_many(a->cache, reach, nreach, a->counts);
}

/* Release up to limit due users of block; returns how many. */
static int
release_block(SwAdvance *a, SwBlock *block, int limit)
{
	MemoryContext tx_cxt = CurrentMemoryContext;
	char		**user_ids;
	int			  n = sw_timers_lock_due(block, limit, &user_ids);

	if (n > 0 && block->kind == SW_BLOCK_WAIT && sw_block_ends_in_webhooks(block))
		release_to_webhooks(a, block, user_ids, n);
	else
		for (int i = 0; i < n; i++)
			release_user(a, block, user_ids[i]);
	MemoryContextSwitchTo(tx_cxt);
	if (n > 0)
		sw_timers_delete(block, user_ids, n);
	MemoryContextSwitchTo(tx_cxt);
	return n;
}

int
sw_release_due_timers(TimestampTz *next_due)
{
	SwAdvance	  a;
	ListCell	 *lc;
	int			  released = 0;
	MemoryContext tx_cxt;

	sw_worker_tx_begin("seriesweb: release due timers");
	tx_cxt = CurrentMemoryContext;
	memset(&a, 0, sizeof(a));
	a.cache = sw_cache_get();
	MemoryContextSwitchTo(tx_cxt);
	a.counts = sw_counts_create(tx_cxt);
	a.cxt = AllocSetContextCreate(tx_cxt, "seriesweb released user", ALLOCSET_DEFAULT_SIZES);
	foreach (lc, a.cache->timed)
	{
		if (released >= SW_RELEASE_BATCH)
			break;
		released += release_block(&a, lfirst(lc), SW_RELEASE_BATCH - released);
	}
	sw_counts_flush(a.counts);
	*next_due = sw_timers_next_due(a.cache->timed);
	sw_worker_tx_commit();
	return released;
}
