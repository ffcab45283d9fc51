/*-------------------------------------------------------------------------
 *
 * destinations.h
 *	  Fairness between the worker's destinations ("scheme://host:port") and
 *	  between the paths of one destination: how many requests each may have
 *	  in flight, how many claimed deliveries may wait for it in the worker's
 *	  ready list, when a delivery handed back to the queue is due again, and
 *	  which handed-back deliveries to make due at once because their slots
 *	  are free.  Used by the worker loop (worker_loop.c) only; it holds no
 *	  rows, only counts.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_DESTINATIONS_H
#define SERIESWEB_DESTINATIONS_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* A delivery may wait this long in the ready list for its slots. */
#define SW_READY_HORIZON_MS 250.0

typedef struct SwDestinations SwDestinations;
typedef struct SwGate		  SwGate; /* a destination, or one path of it */

/* What a delivery passes through: its destination and its path. */
typedef struct SwRoute
{
	SwGate *dest;
	SwGate *path;
} SwRoute;

extern SwDestinations *sw_dest_create(MemoryContext cxt);

/* A claimed delivery to url waits in the ready list; valid until it leaves. */
extern SwRoute sw_dest_claimed(SwDestinations *d, const char *url);

/* Whether its destination and path have a free slot for it. */
extern bool sw_dest_may_start(SwRoute r);
extern void sw_dest_started(SwRoute r, TimestampTz now);
extern void sw_dest_finished(SwDestinations *d, SwRoute r, double duration_ms, TimestampTz now);

/*
 * The destinations ("scheme://host:port") a claim should pass over: every
 * slot busy, and as many deliveries waiting as they may keep.  keys has room
 * for sw_dest_count() entries; returns how many were set.
 */
extern int sw_dest_full(SwDestinations *d, const char **keys);
extern int sw_dest_count(SwDestinations *d);

/*
 * A pass over the ready list, oldest first, after it had its turn to start:
 * each waiting delivery either stays (false) or is handed back (true), due
 * again after *delay_ms, when its turn should come.  Handed-back deliveries
 * are remembered (delivery id and attempts made) to be made due earlier
 * should their slots free up sooner.
 */
extern void sw_dest_begin_pass(SwDestinations *d);
extern bool sw_dest_hand_back(SwDestinations *d, SwRoute r, int64 delivery_id, int attempts,
							  TimestampTz now, int *delay_ms);

/*
 * Handed-back deliveries whose destination and path have free slots and
 * nothing waiting for them: up to max of them, to be made due now (the
 * queue checks that they are still pending with the same attempts).
 */
extern int sw_dest_pull(SwDestinations *d, int64 *delivery_ids, int *attempts, int max,
						TimestampTz now);

/* A claim took everything due: whatever was made due has been claimed. */
extern void sw_dest_claimed_all(SwDestinations *d);

#endif /* SERIESWEB_DESTINATIONS_H */
