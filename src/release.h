/*-------------------------------------------------------------------------
 *
 * release.h
 *	  The worker releases the users whose timers are due (see release.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_RELEASE_H
#define SERIESWEB_RELEASE_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* Users released per transaction, at most. */
#define SW_RELEASE_BATCH 500

/*
 * In one short transaction of its own: move on up to SW_RELEASE_BATCH
 * users whose timers on the live series are due; returns how many, and
 * sets *next_due to when the next timer falls due (DT_NOEND: none).
 */
extern int sw_release_due_timers(TimestampTz *next_due);

#endif /* SERIESWEB_RELEASE_H */
