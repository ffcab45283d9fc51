/*-------------------------------------------------------------------------
 *
 * status.c
 *	  seriesweb.worker_status() and seriesweb.workers(): what the launcher
 *	  and the database workers say they are doing, read from shared memory.
 *
 * worker_status() answers for the current database, in every state a DBA
 * may meet: not preloaded, a standby, a database seriesweb.database leaves
 * out, no worker slot free, starting, connecting, update pending, running,
 * restarting; each with a detail line saying what to do.  workers() lists
 * every slot in use, for superusers and pg_monitor.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <signal.h>

#include "access/htup_details.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "settings.h"
#include "shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#define STATUS_COLUMNS 5

static const char *
state_name(const SwWorkerSlot *s)
{
	switch (s->state)
	{
		case SW_WORKER_FREE:
		case SW_WORKER_STARTING:
			return "starting";
		case SW_WORKER_CONNECTING:
			return "connecting";
		case SW_WORKER_UPDATE_PENDING:
			return "update pending";
		case SW_WORKER_RUNNING:
			/* A crashed worker cannot update its state: look. */
			return (s->pid > 0 && kill(s->pid, 0) == 0) ? "running" : "restarting";
		case SW_WORKER_ABSENT:
			return "stopped";
		case SW_WORKER_EXITED:
			return "restarting";
		case SW_WORKER_STOPPED_FOR_DROP:
			return "stopped";
	}
	return "unknown";
}

static Datum
form_status_row(TupleDesc desc, const char *state, pid_t pid, const char *database, int in_flight,
				const char *detail)
{
	Datum values[STATUS_COLUMNS];
	bool  nulls[STATUS_COLUMNS] = {false, pid == 0, database == NULL, false, false};

	values[0] = CStringGetTextDatum(state);
	values[1] = Int32GetDatum(pid);
	values[2] = database ? CStringGetTextDatum(database) : (Datum) 0;
	values[3] = Int32GetDatum(in_flight);
	values[4] = CStringGetTextDatum(detail);
	return HeapTupleGetDatum(heap_form_tuple(desc, values, nulls));
}

/* The state of a database without a worker slot, and why. */
static Datum
no_worker_row(TupleDesc desc, const char *database)
{
	Oid	  starved;
	pid_t launcher;
	char  detail[256];

	SpinLockAcquire(&sw_shared->mutex);
	starved = sw_shared->starved;
	launcher = sw_shared->launcher_pid;
	strlcpy(detail, sw_shared->launcher_detail, sizeof(detail));
	SpinLockRelease(&sw_shared->mutex);
	if (starved == MyDatabaseId)
		return form_status_row(desc, "no worker slot", 0, database, 0, detail);
	return form_status_row(desc, "starting", 0, database, 0,
						   launcher
							   ? "the launcher starts a worker for this database within seconds"
							   : "the seriesweb launcher is starting");
}

PG_FUNCTION_INFO_V1(sw_worker_status);
Datum
sw_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	 desc;
	char		*database = get_database_name(MyDatabaseId);
	SwWorkerSlot slot;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "seriesweb: worker_status must return a record");

	if (sw_shared == NULL)
		PG_RETURN_DATUM(form_status_row(
			desc, "not loaded", 0, database, 0,
			"seriesweb is not in shared_preload_libraries: deliveries wait until it is "
			"(add it to postgresql.conf and restart the server)"));
	if (RecoveryInProgress())
		PG_RETURN_DATUM(
			form_status_row(desc, "standby", 0, database, 0,
							"this server is a standby: nothing is sent here; once it is "
							"promoted, a worker sends what is pending"));
	if (!sw_database_served(database))
		PG_RETURN_DATUM(form_status_row(
			desc, "not served", 0, database, 0,
			psprintf("seriesweb.database is '%s', which leaves this database out: its deliveries "
					 "wait (add it, or set it to '' for every database, and restart the server)",
					 sw_database)));
	slot = sw_slot_of(MyDatabaseId);
	if (slot.state == SW_WORKER_FREE)
		PG_RETURN_DATUM(no_worker_row(desc, database));
	PG_RETURN_DATUM(
		form_status_row(desc, state_name(&slot), slot.pid, database, slot.in_flight, slot.detail));
}

/* Return rows as a tuplestore (InitMaterializedSRF of PG 15, by hand). */
static void
init_tuplestore_result(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	MemoryContext  old;
	TupleDesc	   desc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		(rsinfo->allowedModes & SFRM_Materialize) == 0)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("seriesweb.workers() must be called in FROM")));
	old = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "seriesweb: workers must return a record");
	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setDesc = CreateTupleDescCopy(desc);
	rsinfo->setResult = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);
}

/* seriesweb.workers(): the launcher, then every database that has a slot. */
PG_FUNCTION_INFO_V1(sw_workers);
Datum
sw_workers(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	SwShared	  *copy;
	Size		   size;

	if (!superuser() && !has_privs_of_role(GetUserId(), ROLE_PG_MONITOR))
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("permission denied to list the seriesweb workers"),
						errhint("Only superusers and members of pg_monitor can.")));
	init_tuplestore_result(fcinfo);
	if (sw_shared == NULL)
		return (Datum) 0;

	size = offsetof(SwShared, slots) + sizeof(SwWorkerSlot) * sw_shared->nslots;
	copy = palloc(size);
	SpinLockAcquire(&sw_shared->mutex);
	memcpy(copy, sw_shared, size);
	SpinLockRelease(&sw_shared->mutex);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
						 (Datum[]){CStringGetTextDatum("launcher"),
								   Int32GetDatum(copy->launcher_pid), (Datum) 0, Int32GetDatum(0),
								   CStringGetTextDatum(copy->launcher_detail)},
						 (bool[]){false, copy->launcher_pid == 0, true, false, false});
	for (int i = 0; i < copy->nslots; i++)
	{
		SwWorkerSlot *s = &copy->slots[i];
		char		 *name = s->database ? get_database_name(s->database) : NULL;

		if (s->state == SW_WORKER_FREE || name == NULL)
			continue;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc,
							 (Datum[]){CStringGetTextDatum(state_name(s)), Int32GetDatum(s->pid),
									   CStringGetTextDatum(name), Int32GetDatum(s->in_flight),
									   CStringGetTextDatum(s->detail)},
							 (bool[]){false, s->pid == 0, false, false, false});
	}
	return (Datum) 0;
}
