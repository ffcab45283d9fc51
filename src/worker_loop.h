/*-------------------------------------------------------------------------
 *
 * worker_loop.h
 *	  The worker's loop: claim due deliveries, send them, record what each
 *	  attempt did, and keep the queue tidy.  worker.c, which sets up the
 *	  worker's session and recovers the queue, runs it until SIGTERM.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_WORKER_LOOP_H
#define SERIESWEB_WORKER_LOOP_H

#include "postgres.h"

/*
 * The loop's lock waits end after this long (worker.c sets lock_timeout):
 * the queue's transaction is then rolled back and tried again later, while
 * requests in flight are still read.
 */
#define SW_QUEUE_LOCK_TIMEOUT_MS 100

typedef struct SwWorkerLoop SwWorkerLoop;

/*
 * The loop's state (sender, destinations, timers) in cxt, the current
 * context; slot is the worker's, where the loop says what it waits for.
 */
extern SwWorkerLoop *sw_worker_loop_create(MemoryContext cxt, int slot);

/*
 * Claim, send and record until SIGTERM, then record what finished (what is
 * still in flight is sent again at the next start).  An error ends it.
 */
extern void sw_worker_loop_run(SwWorkerLoop *w);

#endif /* SERIESWEB_WORKER_LOOP_H */
