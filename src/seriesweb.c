/*-------------------------------------------------------------------------
 *
 * seriesweb.c
 *	  Module entry: what happens when the library is loaded.
 *
 * Every process defines the settings and installs the per-backend
 * callbacks (wake at commit, series and users cache invalidation) exactly
 * once, here.
 * When loaded by shared_preload_libraries, it also reserves the shared state
 * and registers the background worker; without the preload, the SQL side
 * works and deliveries wait (worker_status() says why).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "series_cache.h"
#include "settings.h"
#include "shmem.h"
#include "users_cache.h"
#include "wake.h"

PG_MODULE_MAGIC;

void _PG_init(void);

static void
register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* After an error exit, come back soon; deliveries are waiting. */
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "seriesweb");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sw_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "seriesweb worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "seriesweb worker");
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	sw_define_settings();
	sw_wake_register();
	sw_cache_register();
	sw_users_cache_register();

	if (!process_shared_preload_libraries_in_progress)
		return;
	sw_shmem_init();
	register_worker();
}
