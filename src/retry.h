/*-------------------------------------------------------------------------
 *
 * retry.h
 *	  What a finished attempt means for its delivery: sent, failed, or
 *	  pending again with the time of its next attempt.  Used by the worker
 *	  loop (worker_loop.c) as each request ends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_RETRY_H
#define SERIESWEB_RETRY_H

#include "postgres.h"

#include "queue.h"
#include "sender.h"

/*
 * The outcome of the attempt t made for claimed, to be recorded: the
 * attempt's facts from t, and the delivery's new status.
 */
extern void sw_retry_decide(const SwClaimed *claimed, const SwTransfer *t, SwOutcome *o);

#endif /* SERIESWEB_RETRY_H */
