/*-------------------------------------------------------------------------
 *
 * seriesweb.c
 *	  Module entry: what happens when the library is loaded.
 *
 * Every process defines the settings and installs the per-backend
 * callbacks (wake at commit, series and users cache invalidation) exactly
 * once, here.
 * When loaded by shared_preload_libraries, it also reserves the shared state,
 * registers the launcher (launcher.c), which starts one worker per database
 * that has the extension (worker.c), and installs the hook that lets DROP
 * DATABASE stop a worker (drop_database.c); without the preload, the SQL
 * side works and deliveries wait (worker_status() says why).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "drop_database.h"
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
register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* Nothing is sent from a standby: the launcher starts with promotion. */
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	/* After an error exit, come back soon; deliveries are waiting. */
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "seriesweb");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "sw_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "seriesweb launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "seriesweb launcher");
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
	sw_drop_database_register();
	register_launcher();
}
