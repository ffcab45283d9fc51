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
 * the next timer falls due.  Webhooks so reached are enqueued in the same
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
#include "counters.h"
#include "queue.h"
#include "release.h"
#include "timers.h"
#include "utils/memutils.h"

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

/* Release up to limit due users of block; returns how many. */
static int
release_block(SwAdvance *a, SwBlock *block, int limit)
{
	MemoryContext tx_cxt = CurrentMemoryContext;
	char		**user_ids;
	int			  n = sw_timers_lock_due(block, limit, &user_ids);

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
