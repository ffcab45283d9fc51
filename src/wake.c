/*-------------------------------------------------------------------------
 *
 * wake.c
 *	  Wake-on-commit.  The events trigger calls sw_wake_at_commit(), and
 *	  CREATE EXTENSION, its updates and the retry functions call
 *	  seriesweb._wake_worker(); one transaction callback, registered once
 *	  per backend at library load, sets the latch of the worker of this
 *	  database when the transaction commits (or asks the launcher for a
 *	  worker when it has none), so the worker claims the new deliveries at
 *	  once instead of polling.  Registering per transaction would grow the
 *	  callback list of a long-lived connection with every transaction.
 *
 * The callback runs after the commit is visible to other snapshots
 * (CallXactCallbacks follows ProcArrayEndTransaction), so the worker's claim
 * sees the rows.  An aborted or prepared transaction wakes nobody; the
 * worker's periodic look at the queue covers COMMIT PREPARED.
 *
 * A transaction that started timers (timers.c) or changed the series tells
 * the worker only when its earliest timer is due before the earliest the
 * worker knows of (shmem.c), so a stream of events that start waits a day
 * long wakes nobody.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "shmem.h"
#include "wake.h"

static bool		   wake_pending = false;
static bool		   wake_insist = false;	 /* ask the launcher if there is no worker */
static TimestampTz timer_due = DT_NOEND; /* the earliest timer started */

static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending && sw_shared != NULL)
				sw_wake_database(MyDatabaseId, wake_insist);
			if (timer_due != DT_NOEND && sw_shared != NULL)
				sw_wake_for_timers(MyDatabaseId, timer_due);
			wake_pending = wake_insist = false;
			timer_due = DT_NOEND;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_pending = wake_insist = false;
			timer_due = DT_NOEND;
			break;
		default:
			break;
	}
}

void
sw_wake_register(void)
{
	RegisterXactCallback(wake_xact_callback, NULL);
}

void
sw_wake_at_commit(void)
{
	wake_pending = true;
}

void
sw_wake_for_timer_at_commit(TimestampTz due)
{
	timer_due = Min(timer_due, due);
}

PG_FUNCTION_INFO_V1(sw_wake_worker);
Datum
sw_wake_worker(PG_FUNCTION_ARGS)
{
	sw_wake_at_commit();
	wake_insist = true;
	PG_RETURN_VOID();
}
