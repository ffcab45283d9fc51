/*-------------------------------------------------------------------------
 *
 * wake.h
 *	  Wake the worker when a transaction that enqueued deliveries commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_WAKE_H
#define SERIESWEB_WAKE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Once per backend, at library load. */
extern void sw_wake_register(void);

/* Ask for the worker to be woken when the current transaction commits. */
extern void sw_wake_at_commit(void);

/*
 * The current transaction started a timer due at due (DT_NOBEGIN: changed
 * the series): at commit, tell the worker if it knows of none as early.
 */
extern void sw_wake_for_timer_at_commit(TimestampTz due);

#endif /* SERIESWEB_WAKE_H */
