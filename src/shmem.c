/*-------------------------------------------------------------------------
 *
 * shmem.c
 *	  Shared state between the launcher, the database workers and every
 *	  backend.
 *
 * One slot per possible background worker (max_worker_processes): the
 * launcher gives a database a slot when it starts its worker; the worker
 * publishes its latch, pid and state there as it goes (connecting, update
 * pending, running) and its exit reason when it stops.  Backends find the
 * slot of their database at commit to wake its worker (wake.c), or, when it
 * has none, put the database in the launcher's requests and set the
 * launcher's latch.  DROP DATABASE holds its database so that no worker is
 * started there meanwhile (drop_database.c).  The known-users set
 * (users_cache.c) lives beside it.  All of it exists only when the library
 * is preloaded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "shmem.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "users_cache.h"
#include "utils/timestamp.h"

SwShared *sw_shared = NULL;

static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
#if PG_VERSION_NUM >= 150000
static shmem_request_hook_type prev_shmem_request_hook = NULL;
#endif

static Size
shared_size(void)
{
	return MAXALIGN(
		add_size(offsetof(SwShared, slots), mul_size(max_worker_processes, sizeof(SwWorkerSlot))));
}

static void
request_shared_memory(void)
{
#if PG_VERSION_NUM >= 150000
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
#endif
	RequestAddinShmemSpace(shared_size());
	sw_users_cache_shmem_request();
}

static void
attach_shared_memory(void)
{
	bool found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	sw_shared = ShmemInitStruct("seriesweb", shared_size(), &found);
	if (!found)
	{
		memset(sw_shared, 0, shared_size());
		SpinLockInit(&sw_shared->mutex);
		sw_shared->nslots = max_worker_processes;
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
	shmem_request_hook = request_shared_memory;
#else
	request_shared_memory();
#endif
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = attach_shared_memory;
}

/* The index of a database's slot, or -1; with the mutex held. */
static int
find_slot(Oid database)
{
	for (int i = 0; i < sw_shared->nslots; i++)
		if (sw_shared->slots[i].database == database)
			return i;
	return -1;
}

SwWorkerSlot
sw_slot_of(Oid database)
{
	SwWorkerSlot copy;
	int			 i;

	memset(&copy, 0, sizeof(copy));
	SpinLockAcquire(&sw_shared->mutex);
	i = find_slot(database);
	if (i >= 0)
		copy = sw_shared->slots[i];
	SpinLockRelease(&sw_shared->mutex);
	return copy;
}

void
sw_slot_set_state(int slot, SwWorkerState state, const char *detail)
{
	SwWorkerSlot *s = &sw_shared->slots[slot];
	bool		  running = state != SW_WORKER_ABSENT && state != SW_WORKER_EXITED &&
				   state != SW_WORKER_STOPPED_FOR_DROP;

	SpinLockAcquire(&sw_shared->mutex);
	s->state = state;
	s->pid = running ? MyProcPid : 0;
	s->latch = running ? MyLatch : NULL;
	if (!running)
		s->in_flight = 0;
	strlcpy(s->detail, detail ? detail : "", sizeof(s->detail));
	SpinLockRelease(&sw_shared->mutex);
	/* The launcher decides what a stop means. */
	if (!running && sw_shared->launcher_latch)
		SetLatch(sw_shared->launcher_latch);
}

void
sw_slot_set_in_flight(int slot, int in_flight)
{
	/* An int store is atomic; readers only display it. */
	sw_shared->slots[slot].in_flight = in_flight;
}

void
sw_slot_set_next_timer(int slot, TimestampTz next)
{
	SpinLockAcquire(&sw_shared->mutex);
	sw_shared->slots[slot].next_timer = next;
	SpinLockRelease(&sw_shared->mutex);
}

bool
sw_slot_take_timers_changed(int slot)
{
	bool changed;

	SpinLockAcquire(&sw_shared->mutex);
	changed = sw_shared->slots[slot].timers_changed;
	sw_shared->slots[slot].timers_changed = false;
	SpinLockRelease(&sw_shared->mutex);
	return changed;
}

/* With the mutex held: queue a request, or ask for a full rescan. */
static void
add_request(Oid database)
{
	for (int i = 0; i < sw_shared->nrequests; i++)
		if (sw_shared->requests[i] == database)
			return;
	if (sw_shared->nrequests < SW_MAX_REQUESTS)
		sw_shared->requests[sw_shared->nrequests++] = database;
	else
		sw_shared->rescan = true;
}

void
sw_request_worker(Oid database)
{
	Latch *launcher;

	SpinLockAcquire(&sw_shared->mutex);
	add_request(database);
	launcher = sw_shared->launcher_latch;
	SpinLockRelease(&sw_shared->mutex);
	if (launcher)
		SetLatch(launcher);
}

/*
 * A commit queued work: set the latch of the database's worker.  Without
 * one (the extension was just created, or the worker is between a stop and
 * its restart), ask the launcher: when insist (CREATE EXTENSION, an
 * update, a retry), or else at most once a second per backend, so that a
 * database the launcher will not serve costs it nothing per commit.
 */
void
sw_wake_database(Oid database, bool insist)
{
	static int		   cached = -1;
	static TimestampTz last_request = 0;
	Latch			  *latch = NULL;
	TimestampTz		   now;

	SpinLockAcquire(&sw_shared->mutex);
	if (cached < 0 || sw_shared->slots[cached].database != database)
		cached = find_slot(database);
	if (cached >= 0)
		latch = sw_shared->slots[cached].latch;
	SpinLockRelease(&sw_shared->mutex);
	/* A stale pointer is harmless: latches tolerate spurious sets. */
	if (latch)
	{
		SetLatch(latch);
		return;
	}
	now = GetCurrentTimestamp();
	if (!insist && now - last_request < USECS_PER_SEC)
		return;
	last_request = now;
	sw_request_worker(database);
}

void
sw_wake_for_timers(Oid database, TimestampTz due)
{
	Latch *latch = NULL;
	int	   slot;

	SpinLockAcquire(&sw_shared->mutex);
	slot = find_slot(database);
	if (slot >= 0 && due < sw_shared->slots[slot].next_timer)
	{
		sw_shared->slots[slot].timers_changed = true;
		latch = sw_shared->slots[slot].latch;
	}
	SpinLockRelease(&sw_shared->mutex);
	if (latch)
		SetLatch(latch);
}

bool
sw_hold_database(Oid database)
{
	bool held = false;

	SpinLockAcquire(&sw_shared->mutex);
	for (int i = 0; i < SW_MAX_HELD && !held; i++)
		if (sw_shared->held[i] == InvalidOid)
		{
			sw_shared->held[i] = database;
			held = true;
		}
	SpinLockRelease(&sw_shared->mutex);
	return held;
}

void
sw_release_database(Oid database)
{
	SpinLockAcquire(&sw_shared->mutex);
	for (int i = 0; i < SW_MAX_HELD; i++)
		if (sw_shared->held[i] == database)
		{
			sw_shared->held[i] = InvalidOid;
			break;
		}
	add_request(database);
	SpinLockRelease(&sw_shared->mutex);
	if (sw_shared->launcher_latch)
		SetLatch(sw_shared->launcher_latch);
}

bool
sw_database_held(Oid database)
{
	bool held = false;

	SpinLockAcquire(&sw_shared->mutex);
	for (int i = 0; i < SW_MAX_HELD; i++)
		held |= sw_shared->held[i] == database;
	SpinLockRelease(&sw_shared->mutex);
	return held;
}
