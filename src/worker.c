/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that sends deliveries: its life as a process.
 *
 * The launcher (launcher.c) starts one worker per database, with its slot
 * in shared memory.  The worker connects, with a search_path that only
 * finds pg_catalog and a planner that keeps to the indexes, and waits
 * quietly until the extension exists there at this library's version
 * (saying "update pending" otherwise).  It puts back deliveries a crash or
 * immediate stop left in "sending", makes its lock waits short, and runs
 * the loop that claims, sends and records deliveries (worker_loop.c) until
 * SIGTERM; rows still sending then are sent again at the next start.
 *
 * How the worker stopped is in its slot (worker_status()): SIGTERM, the
 * extension absent, or an error.  DROP EXTENSION it reports in one line,
 * and CREATE EXTENSION asks the launcher for a new worker; whether and when
 * a worker that stopped otherwise starts again, the launcher decides.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "queue.h"
#include "shmem.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "worker_loop.h"

PGDLLEXPORT void sw_worker_main(Datum arg);

/* This worker's slot in shared memory, and how it says it stopped. */
static int			 my_slot;
static SwWorkerState exit_state = SW_WORKER_EXITED;
static const char	*exit_detail = "stopped by an error (see the server log)";
static char			*my_database; /* its name, for messages */

/* While waiting for the extension: interrupts, and SIGHUP's new settings. */
static void
handle_signals(void)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/*
 * Every statement of the worker finds its rows through an index: the due
 * deliveries in next_attempt_at order, deliveries by id.  The queue swings
 * from empty to a million rows between two ANALYZEs, and a plan made for the
 * empty table (scan and sort the whole queue to claim 256 rows) makes every
 * claim cost the whole backlog.  So this session never plans a sequential
 * or bitmap scan, or a sort, where an index will do (joins stay free: the
 * record statement hashes the outcomes it records against the few rows in
 * sending, where a nested loop would rescan the outcomes for each).  And no JIT: the
 * statements are short, and the penalty these settings put on the paths
 * they rule out would make every plan look costly enough to compile.
 */
static void
index_only_plans(void)
{
	static const char *const off[] = {"jit", "enable_seqscan", "enable_bitmapscan", "enable_sort"};

	for (int i = 0; i < lengthof(off); i++)
		SetConfigOption(off[i], "off", PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * The worker's transactions wait for a lock at most SW_QUEUE_LOCK_TIMEOUT_MS
 * (see worker_loop.c).  Set once the queue is recovered: nothing is in flight
 * before, and recovery may as well wait.
 */
static void
short_lock_waits(void)
{
	char value[32];

	snprintf(value, sizeof(value), "%d", SW_QUEUE_LOCK_TIMEOUT_MS);
	SetConfigOption("lock_timeout", value, PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Nothing that a role without superuser wrote may run in the worker: only
 * pg_catalog is searched for functions, operators and types (pg_temp, last,
 * is never searched for functions or operators), whatever search_path the
 * database or role sets.  The worker's statements name seriesweb's tables.
 */
static void
fix_search_path(void)
{
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/* The installed version of the extension in this database, or NULL. */
static char *
extension_version(void)
{
	char *version = NULL;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "seriesweb: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'seriesweb'",
					true, 1) != SPI_OK_SELECT)
		elog(ERROR, "seriesweb: could not read the extension's version");
	if (SPI_processed == 1)
		version = MemoryContextStrdup(
			TopMemoryContext, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return version;
}

/* Stop, saying why in the slot; the launcher decides whether to come back. */
static void
stop_worker(SwWorkerState state, const char *detail)
{
	exit_state = state;
	exit_detail = detail;
	proc_exit(0);
}

static void
publish_exit(int code, Datum arg)
{
	sw_slot_set_state(my_slot, exit_state, exit_detail);
}

/*
 * Connect to the database the launcher started this worker for (arg is its
 * slot; the database is in bgw_extra).  From here on, however it stops, it
 * says so in its slot.
 */
static void
connect_to_database(Datum arg)
{
	Oid database;

	my_slot = DatumGetInt32(arg);
	memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	sw_slot_set_state(my_slot, SW_WORKER_CONNECTING, "connecting to its database");
	before_shmem_exit(publish_exit, (Datum) 0);
	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
	StartTransactionCommand();
	my_database = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
}

/*
 * Wait until the extension is at this library's version: ALTER EXTENSION
 * UPDATE wakes us when it commits.  A database at another version is left
 * alone (its tables may not be what this library's statements expect); it
 * is not an error.  Without the extension there is nothing to do: the
 * worker stops, and CREATE EXTENSION asks the launcher for a new one.
 */
static void
wait_for_extension(void)
{
	char *version;

	while ((version = extension_version()) == NULL || strcmp(version, SERIESWEB_VERSION) != 0)
	{
		if (version == NULL)
			stop_worker(SW_WORKER_ABSENT, "the extension does not exist in this database");
		sw_slot_set_state(my_slot, SW_WORKER_UPDATE_PENDING,
						  psprintf("database \"%s\" has seriesweb %s and the server runs "
								   "seriesweb %s: run ALTER EXTENSION seriesweb UPDATE there",
								   my_database, version, SERIESWEB_VERSION));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10000,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		handle_signals();
		if (ShutdownRequestPending)
			stop_worker(SW_WORKER_EXITED, "stopped by SIGTERM");
	}
}

/*
 * An error in the loop: when DROP EXTENSION took the tables away, say so
 * in one line and exit quietly; the worker started again in its place
 * waits for CREATE EXTENSION.  Any other error is raised as it was.
 */
static void
exit_if_dropped(MemoryContext cxt)
{
	ErrorData *error;

	MemoryContextSwitchTo(cxt);
	error = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	if (extension_version() != NULL)
		ReThrowError(error);
	ereport(LOG, (errmsg("seriesweb: extension dropped from database \"%s\"; its worker stops",
						 my_database)));
	stop_worker(SW_WORKER_ABSENT, "the extension was dropped");
}

void
sw_worker_main(Datum arg)
{
	MemoryContext loop_cxt;
	SwWorkerLoop *loop;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	connect_to_database(arg);
	pgstat_report_appname("seriesweb worker");
	fix_search_path();
	index_only_plans();

	wait_for_extension();
	sw_queue_recover();
	short_lock_waits();

	loop_cxt = AllocSetContextCreate(TopMemoryContext, "seriesweb worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(loop_cxt);
	loop = sw_worker_loop_create(loop_cxt, my_slot);
	sw_slot_set_state(my_slot, SW_WORKER_RUNNING, "sending deliveries");
	ereport(LOG, (errmsg("seriesweb worker sending deliveries of database \"%s\"", my_database)));

	PG_TRY();
	{
		sw_worker_loop_run(loop);
	}
	PG_CATCH();
	{
		exit_if_dropped(loop_cxt);
	}
	PG_END_TRY();

	stop_worker(SW_WORKER_EXITED, "stopped by SIGTERM");
}
