/*-------------------------------------------------------------------------
 *
 * enqueue.h
 *	  The matcher's side of the delivery queue: reach blocks and insert
 *	  webhook deliveries, in the event's transaction (see enqueue.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_ENQUEUE_H
#define SERIESWEB_ENQUEUE_H

#include "postgres.h"

#include "series_cache.h"
#include "utils/hsearch.h"

/*
 * The user reaches webhook block wh: record it in seriesweb.progress and
 * insert its rendered delivery, with one statement; inside SPI.  False (and
 * nothing inserted) if the user had reached the block already.
 */
extern bool sw_enqueue(SwCache *cache, SwBlock *wh, const SwContext *ctx, HTAB *counts);

/* A webhook block a user reaches, with the context of the event. */
typedef struct SwReach
{
	SwBlock	  *block;
	SwContext *ctx; /* its series and block fields are set here */
} SwReach;

/*
 * Record that the user reached a rule (seriesweb.progress), inside SPI;
 * false if they had reached it already.
 */
extern bool sw_reach(SwBlock *block, const SwContext *ctx);

/*
 * Record that users reached rules, with one statement; reached[i] says
 * whether reach[i] was reached now (not before).  Each (block, user) at most
 * once per call, and the items of a user next to each other.
 */
extern void sw_reach_many(const SwReach *reach, int n, bool *reached);

/*
 * sw_enqueue for many at once, with one statement: each (block, user) at
 * most once per call.  Counts the webhooks reached.
 */
extern void sw_enqueue_many(SwCache *cache, const SwReach *reach, int n, HTAB *counts);

#endif /* SERIESWEB_ENQUEUE_H */
