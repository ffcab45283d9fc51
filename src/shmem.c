/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between the worker and every backend, and
 *	  seriesweb.worker_status() which reports it.
 *
 * The worker publishes its latch and pid when it starts and its state as it
 * goes (connecting, waiting for the extension, running); backends read the
 * latch at commit to wake it (wake.c).  The known-users set (users_cache.c)
 * lives beside it.  Both exist only when the library is preloaded; without
 * it, worker_status() says so.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "settings.h"
#include "shmem.h"
#include "commands/dbcommands.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "users_cache.h"
#include "utils/builtins.h"

#include <signal.h>

SwShared *sw_shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static void
sw_shmem_request(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(MAXALIGN(sizeof(SwShared)));
	sw_users_cache_shmem_request();
}

static void
sw_shmem_startup(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sw_shared = ShmemInitStruct("seriesweb", sizeof(SwShared), &found);
	if (!found)
	{
		memset(sw_shared, 0, sizeof(SwShared));
		SpinLockInit(&sw_shared->mutex);
	}
	sw_users_cache_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* Called from _PG_init while shared_preload_libraries is processed. */
void
sw_shmem_init(void)
{
#if PG_VERSION_NUM >= 150000
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = sw_shmem_request;
#else
	sw_shmem_request();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = sw_shmem_startup;
}

void
sw_shared_set_state(SwWorkerState state, const char *detail)
{
	SpinLockAcquire(&sw_shared->mutex);
	sw_shared->state = state;
	if (state == SW_WORKER_EXITED)
		sw_shared->latch = NULL;
	else
	{
		sw_shared->latch = MyLatch;
		sw_shared->database = MyDatabaseId;
		sw_shared->pid = MyProcPid;
	}
	strlcpy(sw_shared->detail, detail ? detail : "", sizeof(sw_shared->detail));
	SpinLockRelease(&sw_shared->mutex);
}

void
sw_shared_set_in_flight(int in_flight)
{
	/* An int store is atomic; readers only display it. */
	sw_shared->in_flight = in_flight;
}

static const char *
state_name(SwWorkerState state, pid_t pid)
{
	switch (state)
	{
		case SW_WORKER_NOT_STARTED:
			return "starting";
		case SW_WORKER_CONNECTING:
			return "connecting";
		case SW_WORKER_WAITING:
			return "waiting";
		case SW_WORKER_UPDATE_PENDING:
			return "update pending";
		case SW_WORKER_RUNNING:
			/* A crashed worker cannot update its state: look. */
			return (pid > 0 && kill(pid, 0) == 0) ? "running" : "restarting";
		case SW_WORKER_EXITED:
			return "restarting";
	}
	return "unknown";
}

PG_FUNCTION_INFO_V1(sw_worker_status);
Datum
sw_worker_status(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	SwShared	copy;
	const char *detail;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "seriesweb: worker_status must return a record");

	if (sw_shared == NULL)
	{
		values[0] = CStringGetTextDatum("not loaded");
		nulls[1] = nulls[3] = true;
		values[2] = CStringGetTextDatum(sw_database ? sw_database : "postgres");
		values[4] = CStringGetTextDatum(
			"seriesweb is not in shared_preload_libraries: deliveries wait until it is "
			"(add it to postgresql.conf and restart the server)");
		PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
	}

	SpinLockAcquire(&sw_shared->mutex);
	memcpy(&copy, sw_shared, sizeof(copy));
	SpinLockRelease(&sw_shared->mutex);

	values[0] = CStringGetTextDatum(state_name(copy.state, copy.pid));
	values[1] = Int32GetDatum(copy.pid);
	nulls[1] = copy.pid == 0;
	values[2] = CStringGetTextDatum(sw_database);
	values[3] = Int32GetDatum(copy.in_flight);
	detail = copy.detail;
	if (strcmp(get_database_name(MyDatabaseId), sw_database) != 0)
		detail = psprintf("the worker serves database \"%s\", so deliveries of this database wait "
						  "(set seriesweb.database = '%s' and restart the server)",
						  sw_database, get_database_name(MyDatabaseId));
	values[4] = CStringGetTextDatum(detail);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
