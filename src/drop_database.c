/*-------------------------------------------------------------------------
 *
 * drop_database.c
 *	  DROP DATABASE and ALTER DATABASE ... RENAME of a served database work
 *	  as for any other database.
 *
 * Both refuse while another session is connected, and a database's worker
 * is one.  So a utility hook, installed in every backend at library load,
 * holds the database first (the launcher starts no worker there, see
 * shmem.c), stops its worker and waits for it to go, then runs the
 * statement.  It lets go when the transaction ends, committed or not (a
 * worker started before the commit would meet a database about to go),
 * and the launcher starts the worker again if the database is still there.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "drop_database.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "shmem.h"
#include "storage/latch.h"
#include "tcop/utility.h"

/* How long DROP DATABASE waits for the worker to stop (it takes milliseconds). */
#define STOP_WAIT_MS 10000
#define STOP_POLL_MS 10

static ProcessUtility_hook_type prev_utility_hook = NULL;

/* The database this backend holds until its transaction ends, or InvalidOid. */
static Oid held = InvalidOid;

/* The database a statement would need to itself, or InvalidOid. */
static Oid
database_needed_alone(Node *parsetree)
{
	if (IsA(parsetree, DropdbStmt))
		return get_database_oid(((DropdbStmt *) parsetree)->dbname, true);
	if (IsA(parsetree, RenameStmt) && ((RenameStmt *) parsetree)->renameType == OBJECT_DATABASE)
		return get_database_oid(((RenameStmt *) parsetree)->subname, true);
	return InvalidOid;
}

/* SIGTERM the database's worker, if it has one, and wait until it is gone. */
static void
stop_worker_of(Oid database)
{
	for (int waited = 0; waited < STOP_WAIT_MS; waited += STOP_POLL_MS)
	{
		SwWorkerSlot slot = sw_slot_of(database);

		if (slot.pid == 0)
			return;
		if (waited == 0)
			kill(slot.pid, SIGTERM);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, STOP_POLL_MS,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
call_next_utility_hook(PlannedStmt *pstmt, const char *queryString,
#if PG_VERSION_NUM >= 140000
					   bool readOnlyTree,
#endif
					   ProcessUtilityContext context, ParamListInfo params,
					   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
#if PG_VERSION_NUM >= 140000
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest,
								qc);
#else
	if (prev_utility_hook)
		prev_utility_hook(pstmt, queryString, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, context, params, queryEnv, dest, qc);
#endif
}

static void
stop_worker_before_utility(PlannedStmt *pstmt, const char *queryString,
#if PG_VERSION_NUM >= 140000
						   bool readOnlyTree,
#endif
						   ProcessUtilityContext context, ParamListInfo params,
						   QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Oid database = sw_shared ? database_needed_alone(pstmt->utilityStmt) : InvalidOid;

	/* Without a free hold, the statement meets the worker as before. */
	if (OidIsValid(database) && !OidIsValid(held) && sw_hold_database(database))
	{
		held = database;
		stop_worker_of(database);
	}
	call_next_utility_hook(pstmt, queryString,
#if PG_VERSION_NUM >= 140000
						   readOnlyTree,
#endif
						   context, params, queryEnv, dest, qc);
}

static void
release_at_end(XactEvent event, void *arg)
{
	if (!OidIsValid(held))
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		sw_release_database(held);
		held = InvalidOid;
	}
}

void
sw_drop_database_register(void)
{
	prev_utility_hook = ProcessUtility_hook;
	ProcessUtility_hook = stop_worker_before_utility;
	RegisterXactCallback(release_at_end, NULL);
}
