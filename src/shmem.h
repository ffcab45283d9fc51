/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The little shared memory seriesweb uses: the launcher's latch and the
 *	  databases it is asked to serve, and one slot per database worker
 *	  (its latch, so committing backends can wake it, and what it is doing,
 *	  for worker_status() and workers()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SHMEM_H
#define SERIESWEB_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/latch.h"
#include "storage/spin.h"

typedef enum SwWorkerState
{
	SW_WORKER_FREE = 0,		  /* slot unused */
	SW_WORKER_STARTING,		  /* registered by the launcher, not yet connected */
	SW_WORKER_CONNECTING,	  /* connecting to its database */
	SW_WORKER_UPDATE_PENDING, /* waits for ALTER EXTENSION UPDATE to this library's version */
	SW_WORKER_RUNNING,
	SW_WORKER_ABSENT,		   /* exited: no extension in its database; not restarted */
	SW_WORKER_EXITED,		   /* exited otherwise; the launcher starts it again */
	SW_WORKER_STOPPED_FOR_DROP /* stopped for DROP or RENAME DATABASE */
} SwWorkerState;

typedef struct SwWorkerSlot
{
	Oid			  database; /* InvalidOid when the slot is free */
	pid_t		  pid;		/* 0 when not running */
	Latch		 *latch;	/* NULL when not running */
	SwWorkerState state;
	int			  in_flight;
	TimestampTz	  next_timer;	  /* the earliest timer the worker knows of */
	bool		  timers_changed; /* an earlier one was committed since */
	char		  detail[256];
} SwWorkerSlot;

/* Databases whose worker the launcher is asked to start, at most this many at a time. */
#define SW_MAX_REQUESTS 64
/* DROP DATABASE statements in progress at once, at most. */
#define SW_MAX_HELD 16

typedef struct SwShared
{
	slock_t		 mutex; /* protects everything below */
	pid_t		 launcher_pid;
	Latch		*launcher_latch;
	Oid			 requests[SW_MAX_REQUESTS];
	int			 nrequests;
	bool		 rescan;			/* requests overflowed: look at every database */
	Oid			 held[SW_MAX_HELD]; /* databases being dropped: no worker */
	Oid			 starved;			/* a database no worker slot was free for */
	char		 launcher_detail[256];
	int			 nslots;
	SwWorkerSlot slots[FLEXIBLE_ARRAY_MEMBER];
} SwShared;

/* NULL unless the library was loaded by shared_preload_libraries. */
extern SwShared *sw_shared;

extern void sw_shmem_init(void);

/* A copy of the slot of a database (state SW_WORKER_FREE when it has none). */
extern SwWorkerSlot sw_slot_of(Oid database);

/* The running worker's own slot: its state and what it does. */
extern void sw_slot_set_state(int slot, SwWorkerState state, const char *detail);
extern void sw_slot_set_in_flight(int slot, int in_flight);

/* Wake the worker of this database, or ask the launcher for one. */
extern void sw_wake_database(Oid database, bool insist);

/*
 * A timer due at due was committed (DT_NOBEGIN: the live series changed):
 * if the worker of the database knows of none as early, tell it and wake it.
 */
extern void sw_wake_for_timers(Oid database, TimestampTz due);

/*
 * The worker's side: publish the earliest timer it knows of (DT_NOEND
 * while it looks: any timer committed meanwhile then tells it), and take
 * the news.
 */
extern void sw_slot_set_next_timer(int slot, TimestampTz next);
extern bool sw_slot_take_timers_changed(int slot);

/* Ask the launcher to start a worker for a database (if it has none). */
extern void sw_request_worker(Oid database);

/* Hold a database (no worker) while it is dropped or renamed, then let go. */
extern bool sw_hold_database(Oid database);
extern void sw_release_database(Oid database);
extern bool sw_database_held(Oid database);

#endif /* SERIESWEB_SHMEM_H */
