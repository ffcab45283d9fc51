/*-------------------------------------------------------------------------
 *
 * timers.h
 *	  Users held by a wait, or armed on a timed rule, until a due time: the
 *	  rows of seriesweb.timers (see timers.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_TIMERS_H
#define SERIESWEB_TIMERS_H

#include "postgres.h"

#include "attrs.h"
#include "datatype/timestamp.h"
#include "nodes/pg_list.h"
#include "series_cache.h"

/*
 * In the moving transaction, inside SPI.  The user reaches wait and waits
 * there / is armed on timed rule with its deadline: false if they had been
 * before.  The worker is woken at commit if the timer is due before any it
 * knows.
 */
extern bool sw_timer_start_wait(SwBlock *wait, const SwContext *ctx);
extern bool sw_timer_arm_rule(SwBlock *rule, const SwContext *ctx);

/*
 * An event reaches timed rule: take (delete) the user's timer, if it is
 * there and not due.  Whoever takes a timer decides which path the user
 * takes, so an event and the worker never both do.
 */
extern bool sw_timer_take(SwBlock *rule, const SwContext *ctx);

/* The user took the not-matched path of timed rule. */
extern void sw_timer_not_matched(SwBlock *rule, const char *user_id);

/*
 * The worker's side, in its transaction: lock (skipping locked ones) and
 * return up to limit users whose timer on block is due, oldest first; then
 * delete those it handled.
 */
extern int	sw_timers_lock_due(SwBlock *block, int limit, char ***user_ids);
extern void sw_timers_delete(SwBlock *block, char **user_ids, int n);

/* The earliest due time of the timers on the blocks of the list; DT_NOEND when none. */
extern TimestampTz sw_timers_next_due(List *timed);

#endif /* SERIESWEB_TIMERS_H */
