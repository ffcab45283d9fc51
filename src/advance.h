/*-------------------------------------------------------------------------
 *
 * advance.h
 *	  Move one user through a live series: reach a block, then arm what
 *	  follows it (see advance.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_ADVANCE_H
#define SERIESWEB_ADVANCE_H

#include "postgres.h"

#include "attrs.h"
#include "series_cache.h"
#include "utils/hsearch.h"

/*
 * Who moves, and where the moves are counted.  ctx holds the user and
 * company, and the event when an event moves them (no event when a timer
 * does); its series and block fields are set here.  cxt is the caller's
 * per-user context, current again after every statement.
 */
typedef struct SwAdvance
{
	SwCache		 *cache;
	HTAB		 *counts;
	MemoryContext cxt;
	SwContext	  ctx;
} SwAdvance;

/* Load the user ctx.user_id, their tags and company into ctx; inside SPI. */
extern void sw_advance_load_user(const SwCache *cache, SwContext *ctx);

/*
 * An event satisfies rule (an entry rule, or one armed for the user): the
 * user reaches it, unless they had or, for a timed rule, its time is up,
 * and goes on.
 */
extern void sw_advance_reach(SwAdvance *a, SwBlock *rule);

/*
 * The worker took the user's timer on a wait or timed rule that is due:
 * the wait releases them; the timed rule is reached if it needs no event
 * and holds now, else its not-matched path is taken.
 */
extern void sw_advance_release(SwAdvance *a, SwBlock *timed);

#endif /* SERIESWEB_ADVANCE_H */
