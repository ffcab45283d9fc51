/*-------------------------------------------------------------------------
 *
 * launcher.c
 *	  The launcher: one worker per database that has the extension.
 *
 * Registered at server start (shared_preload_libraries) and connected to no
 * database, so it reads only the shared catalogs.  At start it gives every
 * database that accepts connections (and that seriesweb.database lists,
 * when it lists any) a worker: one that finds no extension there says so
 * in its slot and exits, and is not started again until a commit in that
 * database asks for it (CREATE EXTENSION calls seriesweb._wake_worker()).
 * A worker that stops otherwise is started again, sooner the first time,
 * later when it keeps stopping; one whose database was dropped, or is
 * being dropped (drop_database.c), is not.  The postmaster tells us when a
 * worker we registered starts or stops (bgw_notify_pid), so the loop sleeps
 * on its latch; a timer covers restarts that are due and workers a previous
 * launcher registered.
 *
 * When no background worker slot is free (max_worker_processes), the
 * database waits, the log says so once, and worker_status() there says
 * which setting to raise.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "settings.h"
#include "shmem.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

/* A worker that stopped is started again after this, doubled each time it stops soon. */
#define RESTART_FIRST_MS 1000
#define RESTART_MAX_MS (60 * 1000)
/* Stopping sooner than this after its start counts as stopping soon. */
#define STABLE_MS (60 * 1000)
/* Look at the slots at least this often. */
#define LOOK_EVERY_MS 10000

/* What the launcher remembers of each slot's worker. */
typedef struct Tracked
{
	BackgroundWorkerHandle *handle; /* NULL: registered by a previous launcher */
	TimestampTz				started_at;
	TimestampTz				restart_at; /* 0: none due */
	int						backoff_ms;
} Tracked;

typedef struct Launcher
{
	Tracked *tracked; /* one per slot */
	List	*waiting; /* databases (Oid) that want a worker and have no slot yet */
	bool	 starved; /* the last registration found no free slot */
} Launcher;

PGDLLEXPORT void sw_launcher_main(Datum arg);

/* Is this a database the launcher serves, now?  In a transaction. */
static bool
database_wanted(Oid database)
{
	HeapTuple tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(database));
	bool	  wanted = false;

	if (HeapTupleIsValid(tup))
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		wanted = db->datallowconn && !db->datistemplate && sw_database_served(NameStr(db->datname));
		ReleaseSysCache(tup);
	}
	return wanted;
}

/* Every database that accepts connections, as autovacuum lists them. */
static List *
all_databases(void)
{
	List		 *databases = NIL;
	Relation	  rel = table_open(DatabaseRelationId, AccessShareLock);
	TableScanDesc scan = table_beginscan_catalog(rel, 0, NULL);
	HeapTuple	  tup;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
		databases = lappend_oid(databases, ((Form_pg_database) GETSTRUCT(tup))->oid);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return databases;
}

static void
note_starved(Oid database, bool starved)
{
	SpinLockAcquire(&sw_shared->mutex);
	if (starved)
	{
		sw_shared->starved = database;
		snprintf(sw_shared->launcher_detail, sizeof(sw_shared->launcher_detail),
				 "no background worker slot is free for this database's worker: raise "
				 "max_worker_processes (now %d) and restart the server",
				 max_worker_processes);
	}
	else if (sw_shared->starved == database || database == InvalidOid)
	{
		sw_shared->starved = InvalidOid;
		strlcpy(sw_shared->launcher_detail, "starting a worker for each database",
				sizeof(sw_shared->launcher_detail));
	}
	SpinLockRelease(&sw_shared->mutex);
}

/* What the postmaster is to start for a database: its worker, in a slot. */
static void
describe_worker(BackgroundWorker *worker, int slot, Oid database)
{
	memset(worker, 0, sizeof(*worker));
	worker->bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker->bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker->bgw_restart_time = BGW_NEVER_RESTART; /* the launcher decides */
	snprintf(worker->bgw_library_name, BGW_MAXLEN, "seriesweb");
	snprintf(worker->bgw_function_name, BGW_MAXLEN, "sw_worker_main");
	snprintf(worker->bgw_name, BGW_MAXLEN, "seriesweb worker %u", database);
	snprintf(worker->bgw_type, BGW_MAXLEN, "seriesweb worker");
	worker->bgw_main_arg = Int32GetDatum(slot);
	worker->bgw_notify_pid = MyProcPid;
	memcpy(worker->bgw_extra, &database, sizeof(Oid));
}

static void
set_slot(int slot, Oid database, SwWorkerState state)
{
	SpinLockAcquire(&sw_shared->mutex);
	sw_shared->slots[slot].database = database;
	sw_shared->slots[slot].state = state;
	sw_shared->slots[slot].detail[0] = '\0';
	SpinLockRelease(&sw_shared->mutex);
}

/* Register the worker of a slot; false when no background worker slot is free. */
static bool
start_worker(Launcher *l, int slot, Oid database)
{
	BackgroundWorker worker;
	Tracked			*t = &l->tracked[slot];
	bool			 registered;

	describe_worker(&worker, slot, database);
	set_slot(slot, database, SW_WORKER_STARTING);
	t->restart_at = 0;
	t->started_at = GetCurrentTimestamp();
	/* The handle outlives the launcher's transaction. */
	MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&worker, &t->handle);
	MemoryContextSwitchTo(CurTransactionContext);
	if (!registered)
	{
		t->handle = NULL;
		set_slot(slot, InvalidOid, SW_WORKER_FREE);
		if (!l->starved)
			ereport(LOG, (errmsg("seriesweb: no background worker slot is free to serve database "
								 "%u; it waits",
								 database),
						  errhint("Raise max_worker_processes (now %d): seriesweb takes one "
								  "for its launcher and one per database that has the extension.",
								  max_worker_processes)));
	}
	l->starved = !registered;
	note_starved(database, !registered);
	return registered;
}

static int
free_slot(void)
{
	int found = -1;

	SpinLockAcquire(&sw_shared->mutex);
	for (int i = 0; i < sw_shared->nslots && found < 0; i++)
		if (sw_shared->slots[i].state == SW_WORKER_FREE)
			found = i;
	SpinLockRelease(&sw_shared->mutex);
	return found;
}

static bool
has_slot(Oid database)
{
	return sw_slot_of(database).state != SW_WORKER_FREE;
}

/* Take the requests backends queued, or every database after an overflow. */
static void
take_requests(Launcher *l, bool everything)
{
	Oid	  requests[SW_MAX_REQUESTS];
	int	  n;
	bool  rescan;
	List *databases;

	SpinLockAcquire(&sw_shared->mutex);
	n = sw_shared->nrequests;
	memcpy(requests, sw_shared->requests, sizeof(Oid) * n);
	sw_shared->nrequests = 0;
	rescan = sw_shared->rescan || everything;
	sw_shared->rescan = false;
	SpinLockRelease(&sw_shared->mutex);

	databases = rescan ? all_databases() : NIL;
	/* The list outlives the launcher's transaction. */
	MemoryContextSwitchTo(TopMemoryContext);
	l->waiting = list_concat_unique_oid(l->waiting, databases);
	for (int i = 0; i < n; i++)
		l->waiting = list_append_unique_oid(l->waiting, requests[i]);
	MemoryContextSwitchTo(CurTransactionContext);
}

/* Give the databases waiting for a worker a slot each, while slots last. */
static void
start_waiting(Launcher *l)
{
	List		 *still = NIL;
	ListCell	 *lc;
	MemoryContext cxt = CurTransactionContext;

	foreach (lc, l->waiting)
	{
		Oid database = lfirst_oid(lc);
		int slot;

		if (has_slot(database) || sw_database_held(database) || !database_wanted(database))
			continue;
		slot = free_slot();
		if (slot >= 0 && start_worker(l, slot, database))
			continue;
		MemoryContextSwitchTo(TopMemoryContext);
		still = lappend_oid(still, database);
		MemoryContextSwitchTo(cxt);
	}
	list_free(l->waiting);
	l->waiting = still;
}

static bool
worker_gone(const Tracked *t, const SwWorkerSlot *s)
{
	pid_t pid;

	if (t->handle != NULL)
		return GetBackgroundWorkerPid(t->handle, &pid) == BGWH_STOPPED;
	/* Registered by a previous launcher: its pid tells. */
	return s->state != SW_WORKER_STARTING && (s->pid == 0 || kill(s->pid, 0) != 0);
}

static void
release_slot(Launcher *l, int slot)
{
	SpinLockAcquire(&sw_shared->mutex);
	memset(&sw_shared->slots[slot], 0, sizeof(SwWorkerSlot));
	SpinLockRelease(&sw_shared->mutex);
	if (l->tracked[slot].handle)
		pfree(l->tracked[slot].handle);
	memset(&l->tracked[slot], 0, sizeof(Tracked));
}

/*
 * A worker stopped: free its slot when it is not to come back (no
 * extension, its database dropped, held or left out), else start it again
 * when its backoff has passed.
 */
static void
worker_stopped(Launcher *l, int slot, const SwWorkerSlot *s, TimestampTz now)
{
	Tracked *t = &l->tracked[slot];
	Oid		 database = s->database;

	if (s->state == SW_WORKER_ABSENT || sw_database_held(database) || !database_wanted(database))
	{
		release_slot(l, slot);
		return;
	}
	if (t->restart_at == 0)
	{
		t->backoff_ms = (now - t->started_at) / 1000 > STABLE_MS
							? RESTART_FIRST_MS
							: Min(Max(t->backoff_ms * 2, RESTART_FIRST_MS), RESTART_MAX_MS);
		t->restart_at = TimestampTzPlusMilliseconds(now, t->backoff_ms);
		if (t->handle)
			pfree(t->handle);
		t->handle = NULL;
		SpinLockAcquire(&sw_shared->mutex);
		sw_shared->slots[slot].state = SW_WORKER_EXITED;
		SpinLockRelease(&sw_shared->mutex);
	}
	if (now >= t->restart_at)
		(void) start_worker(l, slot, database);
}

/* Look at every slot in use; returns when the next restart is due. */
static TimestampTz
check_slots(Launcher *l, TimestampTz now)
{
	TimestampTz next = TimestampTzPlusMilliseconds(now, LOOK_EVERY_MS);

	for (int i = 0; i < sw_shared->nslots; i++)
	{
		SwWorkerSlot s;

		SpinLockAcquire(&sw_shared->mutex);
		s = sw_shared->slots[i];
		SpinLockRelease(&sw_shared->mutex);
		if (s.state == SW_WORKER_FREE)
			continue;
		if (l->tracked[i].restart_at != 0 || worker_gone(&l->tracked[i], &s))
			worker_stopped(l, i, &s, now);
		if (l->tracked[i].restart_at != 0)
			next = Min(next, l->tracked[i].restart_at);
	}
	return next;
}

static void
launcher_loop(Launcher *l)
{
	bool first = true;

	while (!ShutdownRequestPending)
	{
		TimestampTz now = GetCurrentTimestamp();
		TimestampTz next;

		ResetLatch(MyLatch);
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		take_requests(l, first);
		next = check_slots(l, now);
		start_waiting(l);
		PopActiveSnapshot();
		CommitTransactionCommand();
		first = false;
		/* Waiting databases are tried again when a worker stops (the latch), or soon. */
		if (l->waiting != NIL)
			next = Min(next, TimestampTzPlusMilliseconds(now, RESTART_FIRST_MS));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(1, (next - GetCurrentTimestamp()) / 1000), PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
}

static void
forget_launcher(int code, Datum arg)
{
	SpinLockAcquire(&sw_shared->mutex);
	sw_shared->launcher_pid = 0;
	sw_shared->launcher_latch = NULL;
	SpinLockRelease(&sw_shared->mutex);
}

void
sw_launcher_main(Datum arg)
{
	Launcher l;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	/* The shared catalogs only: pg_database. */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("seriesweb launcher");

	memset(&l, 0, sizeof(l));
	l.tracked = MemoryContextAllocZero(TopMemoryContext, sizeof(Tracked) * sw_shared->nslots);
	SpinLockAcquire(&sw_shared->mutex);
	sw_shared->launcher_pid = MyProcPid;
	sw_shared->launcher_latch = MyLatch;
	SpinLockRelease(&sw_shared->mutex);
	on_shmem_exit(forget_launcher, (Datum) 0);
	note_starved(InvalidOid, false);

	launcher_loop(&l);
	/* Exit code 1: the postmaster starts the launcher again unless it is shutting down. */
	proc_exit(1);
}
