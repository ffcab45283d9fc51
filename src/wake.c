/*-------------------------------------------------------------------------
 *
 * wake.c
 *	  Wake-on-commit.  The events trigger (and retry functions) call
 *	  sw_wake_at_commit(); one transaction callback, registered once per
 *	  backend at library load, sets the worker's latch when the transaction
 *	  commits, so the worker claims the new deliveries at once instead of
 *	  polling.  Registering per transaction would grow the callback list of a
 *	  long-lived connection with every transaction.
 *
 * The callback runs after the commit is visible to other snapshots
 * (CallXactCallbacks follows ProcArrayEndTransaction), so the worker's claim
 * sees the rows.  An aborted or prepared transaction wakes nobody; the
 * worker's periodic look at the queue covers COMMIT PREPARED.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "shmem.h"
#include "wake.h"

static bool wake_pending = false;

void
sw_wake_now(void)
{
	Latch *latch;
	Oid	   database;

	if (sw_shared == NULL)
		return;
	/* A stale pointer is harmless: latches tolerate spurious sets. */
	SpinLockAcquire(&sw_shared->mutex);
	latch = sw_shared->latch;
	database = sw_shared->database;
	SpinLockRelease(&sw_shared->mutex);
	/* Deliveries of another database are not the worker's to send. */
	if (latch && (database == InvalidOid || database == MyDatabaseId))
		SetLatch(latch);
}

static void
wake_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (wake_pending)
				sw_wake_now();
			wake_pending = false;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			wake_pending = false;
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

PG_FUNCTION_INFO_V1(sw_wake_worker);
Datum
sw_wake_worker(PG_FUNCTION_ARGS)
{
	sw_wake_at_commit();
	PG_RETURN_VOID();
}
