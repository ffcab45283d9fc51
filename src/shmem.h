/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  The little shared memory seriesweb uses: where the worker's latch is
 *	  (so committing backends can wake it) and what the worker is doing (for
 *	  seriesweb.worker_status()).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SHMEM_H
#define SERIESWEB_SHMEM_H

#include "postgres.h"

#include "storage/latch.h"
#include "storage/spin.h"

typedef enum SwWorkerState
{
	SW_WORKER_NOT_STARTED = 0,
	SW_WORKER_CONNECTING,
	SW_WORKER_WAITING,		  /* for CREATE EXTENSION in its database */
	SW_WORKER_UPDATE_PENDING, /* for ALTER EXTENSION UPDATE to this library's version */
	SW_WORKER_RUNNING,
	SW_WORKER_EXITED
} SwWorkerState;

typedef struct SwShared
{
	slock_t		  mutex;	/* protects everything below */
	Latch		 *latch;	/* the worker's latch, NULL when none */
	Oid			  database; /* the worker's, once connected */
	pid_t		  pid;
	SwWorkerState state;
	int			  in_flight;
	char		  detail[256];
} SwShared;

/* NULL unless the library was loaded by shared_preload_libraries. */
extern SwShared *sw_shared;

extern void sw_shmem_init(void);
extern void sw_shared_set_state(SwWorkerState state, const char *detail);
extern void sw_shared_set_in_flight(int in_flight);

#endif /* SERIESWEB_SHMEM_H */
