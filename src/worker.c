/*-------------------------------------------------------------------------
 *
 * worker.c
 *	  The background worker that sends deliveries.
 *
 * One worker, registered at server start (shared_preload_libraries), serves
 * seriesweb.database, with a search_path that only finds pg_catalog.  It
 * waits quietly until the extension exists there at this library's version
 * (saying "update pending" otherwise), puts back deliveries a crash or
 * immediate stop left in "sending" (and, every RECOVER_EVERY_MS, any in
 * sending that it did not claim, as a restored dump may hold), then
 * loops: claim due deliveries while there is room under
 * seriesweb.max_concurrency (one short transaction), send them with the
 * multi sender outside any transaction, and record finished attempts in
 * batches (one short transaction each).  A slow request holds only its own
 * slot.  Committing backends set the worker's latch (wake.c), so new work is
 * claimed at once, or CLAIM_GATHER_MS after the previous claim (a stream of
 * commits is claimed a few at a time, not one per transaction); a timer
 * covers retries that come due.
 *
 * Memory: each claim batch has its own context, deleted once every delivery
 * in it has been recorded; the outcome buffer is reused.  SIGHUP reloads
 * settings; SIGTERM records what finished and exits (rows still sending are
 * sent again at the next start).  The postmaster restarts the worker after a
 * crash, and after DROP EXTENSION, which it reports in one line.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "common/hashfn.h"
#include "lib/ilist.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "queue.h"
#include "response.h"
#include "sender.h"
#include "settings.h"
#include "shmem.h"
#include "sign.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* Outcomes recorded per transaction at most. */
#define RECORD_BATCH 512
/* A finished attempt waits at most this long to be recorded. */
#define RECORD_DELAY_MS 10
/*
 * After a claim, new work waits this long for the next one: under a stream
 * of one-event commits, each claim then takes what several of them queued.
 */
#define CLAIM_GATHER_MS 2
/* While requests are in flight, look at the latch this often. */
#define BUSY_POLL_MS 5
/* A delivery may wait this long in the ready list for its destination. */
#define READY_HORIZON_MS 250.0
/* A delivery handed back for a slow destination waits at most this long. */
#define HAND_BACK_MAX_MS (10 * 60 * 1000)
/* Claims start from the beginning of the due order at least this often. */
#define CURSOR_RESTART_MS 1000
/* Look at the queue at least this often (COMMIT PREPARED wakes nobody). */
#define IDLE_LOOK_MS 5000
#define FOLD_EVERY_MS 2000
/* Deliveries in sending that no running worker claimed are looked for this often. */
#define RECOVER_EVERY_MS 10000
#define PURGE_EVERY_MS (10 * 60 * 1000)

/* A claim batch: its memory lives until its last delivery is recorded. */
typedef struct Batch
{
	MemoryContext cxt;
	int			  unrecorded;
} Batch;

typedef struct Job
{
	SwTransfer transfer; /* first: the sender hands it back */
	SwClaimed  claimed;
	Batch	  *batch;
	uint32	   host; /* hash of the URL's scheme, host and port */
	dlist_node node; /* in the ready list until started */
} Job;

/* Per destination: slots in use, deliveries waiting, typical duration. */
typedef struct Host
{
	uint32		host; /* hash key */
	int			in_flight;
	int			waiting;
	int			seen;	   /* scratch for release_backlog */
	double		avg_ms;	   /* moving average; -1 before the first request ends */
	TimestampTz handed_to; /* the last handed-back delivery is due then */
	char	   *key;	   /* "scheme://host:port" as the claim sees it; or NULL */
} Host;

typedef struct WorkerState
{
	SwSender	 *sender;
	ResourceOwner owner; /* for work done between transactions */
	MemoryContext loop_cxt;
	SwClaimed	 *claim_buf; /* claim_cap entries */
	int			  claim_cap;
	dlist_head	  ready; /* claimed, waiting for a slot */
	int			  nready;
	HTAB		 *hosts;
	int64		 *release_ids; /* deliveries handed back to the queue */
	int			 *release_ms;
	int			  nrelease;
	SwOutcome	 *outcomes; /* outcome_cap entries */
	Job			**outcome_jobs;
	int			  outcome_cap;
	int			  noutcomes;
	TimestampTz	  first_outcome_at;
	TimestampTz	  next_due;
	TimestampTz	  last_claim;
	SwClaimCursor cursor;
	TimestampTz	  restart_by; /* when claims start from the beginning again */
	TimestampTz	  last_fold;
	TimestampTz	  last_recover;
	TimestampTz	  last_purge;
	bool		  counts_dirty;
} WorkerState;

PGDLLEXPORT void sw_worker_main(Datum arg);

/* This worker's slot in shared memory, and how it says it stopped. */
static int			 my_slot;
static SwWorkerState exit_state = SW_WORKER_EXITED;
static const char	*exit_detail = "stopped by an error (see the server log)";
static char			*my_database; /* its name, for messages */

static long
ms_until(TimestampTz when, TimestampTz now)
{
	if (when <= now)
		return 0;
	return (long) Min((when - now + 999) / 1000, (TimestampTz) INT_MAX);
}

/* Sleep until the latch, the timeout or postmaster death; then consume. */
static void
wait_for_latch(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms,
					 PG_WAIT_EXTENSION);
}

static void
handle_signals(WorkerState *w)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		char *networks = pstrdup(sw_allowed_networks);

		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		if (w && w->sender)
		{
			sw_sender_configure(w->sender);
			/* Open connections were allowed by the old list only. */
			if (strcmp(networks, sw_allowed_networks) != 0)
				sw_sender_forget_connections(w->sender);
		}
		pfree(networks);
	}
}

/*
 * Every statement of the worker finds its rows through an index: the due
 * deliveries in next_attempt_at order, deliveries by id.  The queue swings
 * from empty to a million rows between two ANALYZEs, and a plan made for the
 * empty table (scan and sort the whole queue to claim 256 rows) makes every
 * claim cost the whole backlog.  So this session never plans a sequential
 * or bitmap scan, or a sort, where an index will do (joins stay free: the
 * record statement hashes its batch against the few rows in sending, where
 * a nested loop would rescan the batch for each).  And no JIT: the
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
		wait_for_latch(10000);
		ResetLatch(MyLatch);
		handle_signals(NULL);
		if (ShutdownRequestPending)
			stop_worker(SW_WORKER_EXITED, "stopped by SIGTERM");
	}
}

/* ---- outcomes ---- */

static double
random_fraction(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state);
#else
	return (double) random() / ((double) MAX_RANDOM_VALUE + 1);
#endif
}

/* Decide what a finished attempt means for its delivery. */
static void
judge(const Job *job, SwOutcome *o)
{
	const SwTransfer *t = &job->transfer;
	const SwClaimed	 *c = &job->claimed;
	long			  delay_ms;

	o->delivery_id = c->delivery_id;
	o->attempt = c->attempts + 1;
	o->started_at = t->started_at;
	o->duration_ms = t->duration_ms;
	o->finished_at = TimestampTzPlusMilliseconds(t->started_at, (int64) t->duration_ms);
	o->response_status = (int) t->status;
	o->error = t->error;
	o->summary = t->summary;
	o->response_body = t->response_body.len > 0 ? t->response_body.data : NULL;

	if (t->error == NULL)
		o->status = "sent";
	else if (t->status == 410 || o->attempt >= c->max_attempts)
		o->status = "failed";
	else
	{
		o->status = "pending";
		delay_ms = sw_retry_delay_ms(o->attempt);
		if ((t->status == 429 || t->status == 503) && t->retry_after_s >= 0)
			delay_ms = sw_retry_after_delay_ms(t->retry_after_s, sw_longest_retry_delay_ms());
		/* Up to 10% jitter, so retries of one outage do not arrive as one wave. */
		delay_ms += (long) (random_fraction() * (delay_ms / 10));
		o->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
	}
}

static void
on_done(SwTransfer *t, void *arg)
{
	WorkerState *w = arg;
	Job			*job = (Job *) t;

	Host *host = hash_search(w->hosts, &job->host, HASH_FIND, NULL);

	host->in_flight--;
	host->avg_ms = host->avg_ms < 0 ? t->duration_ms : host->avg_ms * 0.8 + t->duration_ms * 0.2;
	if (w->noutcomes == 0)
		w->first_outcome_at = GetCurrentTimestamp();
	judge(job, &w->outcomes[w->noutcomes]);
	/* A retry is due later: make sure we look for it then. */
	if (strcmp(w->outcomes[w->noutcomes].status, "pending") == 0)
		w->next_due = Min(w->next_due, w->outcomes[w->noutcomes].next_attempt_at);
	w->outcome_jobs[w->noutcomes] = job;
	w->noutcomes++;
}

/* A job's delivery is recorded or handed back: its batch may go. */
static void
job_finished(Job *job)
{
	Batch *b = job->batch;

	if (--b->unrecorded == 0)
		MemoryContextDelete(b->cxt);
}

static void
record_outcomes(WorkerState *w)
{
	if (w->noutcomes == 0)
		return;
	sw_queue_record(w->outcomes, w->noutcomes);
	for (int i = 0; i < w->noutcomes; i++)
		job_finished(w->outcome_jobs[i]);
	w->noutcomes = 0;
	w->counts_dirty = true;
}

/* ---- claiming and sending ---- */

/* The destination of a URL, for per-destination slots: scheme://host:port. */
static size_t
host_len(const char *url)
{
	const char *start = strstr(url, "://");

	start = start ? start + 3 : url;
	return (start - url) + strcspn(start, "/?#");
}

static uint32
host_of(const char *url)
{
	return hash_bytes((const unsigned char *) url, host_len(url));
}

/*
 * The destination as the claim statement computes it from the URL (up to
 * the third '/'), for claims to pass over; NULL when the two would differ
 * (a query or fragment right after the host), and then it is not passed
 * over.
 */
static char *
host_key(const char *url, MemoryContext cxt)
{
	size_t len = host_len(url);
	char  *key;

	if (strstr(url, "://") == NULL || (url[len] != '/' && url[len] != '\0'))
		return NULL;
	key = MemoryContextAlloc(cxt, len + 1);
	memcpy(key, url, len);
	key[len] = '\0';
	return key;
}

static Host *
get_host(WorkerState *w, uint32 key)
{
	bool  found;
	Host *h = hash_search(w->hosts, &key, HASH_ENTER, &found);

	if (!found)
	{
		h->in_flight = h->waiting = h->seen = 0;
		h->avg_ms = -1; /* no request finished yet */
		h->handed_to = 0;
		h->key = NULL;
	}
	return h;
}

/*
 * Slots one destination may hold: most of them, but never all, so that a
 * slow receiver leaves room for the others.
 */
static int
host_slots(void)
{
	return Max(1, sw_max_concurrency * 3 / 4);
}

static void
start_job(WorkerState *w, Job *job)
{
	SwClaimed *c = &job->claimed;

	job->transfer.method = c->method;
	job->transfer.url = c->url;
	job->transfer.headers = c->headers;
	job->transfer.nheaders = c->nheaders;
	if (c->secret)
	{
		/* PostgreSQL's HMAC registers with a resource owner; we are between transactions. */
		ResourceOwner saved = CurrentResourceOwner;

		CurrentResourceOwner = w->owner;
		job->transfer.headers = sw_sign_headers(c->secret, c->webhook_id, c->body, c->body_len,
												c->headers, &job->transfer.nheaders);
		CurrentResourceOwner = saved;
	}
	job->transfer.body = c->body;
	job->transfer.body_len = c->body_len;
	sw_sender_start(w->sender, &job->transfer, on_done, w);
}

/* Start ready deliveries, oldest first, while slots are free. */
static void
start_ready(WorkerState *w)
{
	dlist_mutable_iter it;
	int				   per_host = host_slots();

	dlist_foreach_modify(it, &w->ready)
	{
		Job	 *job = dlist_container(Job, node, it.cur);
		Host *host;

		if (sw_sender_in_flight(w->sender) >= sw_max_concurrency)
			break;
		host = get_host(w, job->host);
		if (host->in_flight >= per_host)
			continue;
		/* Outcomes must fit in the buffer: record before starting more. */
		if (w->noutcomes + sw_sender_in_flight(w->sender) >= w->outcome_cap)
			record_outcomes(w);
		dlist_delete(&job->node);
		w->nready--;
		host->waiting--;
		host->in_flight++;
		MemoryContextSwitchTo(job->batch->cxt);
		start_job(w, job);
		MemoryContextSwitchTo(w->loop_cxt);
	}
}

/*
 * How many deliveries of a destination may wait in the ready list: what its
 * slots will start within READY_HORIZON_MS at its usual pace, and at least
 * one full set of slots.  A destination none of whose requests has ended
 * yet counts as slow until one does.
 */
static int
host_keep(const Host *h, int per_host)
{
	double rounds;

	if (h->avg_ms < 0)
		return per_host;
	rounds = READY_HORIZON_MS / Max(h->avg_ms, 1.0);
	return rounds >= INT_MAX / per_host ? INT_MAX : Max(1, (int) rounds) * per_host;
}

/*
 * Hand back deliveries that would wait behind a slow destination for longer
 * than the horizon: the ready list does not fill up with them, and the queue
 * keeps the order for everyone else.  Each is due again when the
 * destination's slots should have worked through those handed back before
 * it, so that a backlog of thousands comes back a slot's worth at a time
 * instead of all of it after every request (claimed and handed back over
 * and over).  A fast destination keeps its whole backlog.
 */
static int
hand_back_delay(Host *h, int per_host, TimestampTz now)
{
	double		request_ms = Max(200.0, h->avg_ms);
	TimestampTz due = Max(TimestampTzPlusMilliseconds(now, (int64) request_ms), h->handed_to);

	due = Min(TimestampTzPlusMilliseconds(due, (int64) (request_ms / per_host)),
			  TimestampTzPlusMilliseconds(now, HAND_BACK_MAX_MS));
	h->handed_to = due;
	return (int) ms_until(due, now);
}

static void
release_backlog(WorkerState *w, TimestampTz now)
{
	dlist_mutable_iter it;
	int				   per_host = host_slots();
	HASH_SEQ_STATUS	   seq;
	Host			  *h;

	hash_seq_init(&seq, w->hosts);
	while ((h = hash_seq_search(&seq)) != NULL)
		h->seen = 0;
	/* Keep the oldest of each destination, hand back the rest. */
	dlist_foreach_modify(it, &w->ready)
	{
		Job	 *job = dlist_container(Job, node, it.cur);
		Host *host = get_host(w, job->host);

		if (++host->seen <= host_keep(host, per_host))
			continue;
		w->release_ids[w->nrelease] = job->claimed.delivery_id;
		w->release_ms[w->nrelease] = hand_back_delay(host, per_host, now);
		w->nrelease++;
		dlist_delete(&job->node);
		w->nready--;
		host->waiting--;
		job_finished(job);
	}
	if (w->nrelease > 0)
	{
		sw_queue_release(w->release_ids, w->release_ms, w->nrelease);
		w->nrelease = 0;
	}
}

static void
ensure_buffers(WorkerState *w)
{
	int claim = Max(4 * sw_max_concurrency, 512);
	int outcomes = sw_max_concurrency + RECORD_BATCH;

	if (w->claim_cap == claim && w->outcome_cap >= outcomes)
		return;
	if (w->claim_buf)
	{
		record_outcomes(w);
		pfree(w->claim_buf);
		pfree(w->release_ids);
		pfree(w->release_ms);
	}
	if (w->outcome_cap < outcomes)
	{
		if (w->outcomes)
		{
			pfree(w->outcomes);
			pfree(w->outcome_jobs);
		}
		w->outcomes = MemoryContextAlloc(TopMemoryContext, sizeof(SwOutcome) * outcomes);
		w->outcome_jobs = MemoryContextAlloc(TopMemoryContext, sizeof(Job *) * outcomes);
		w->outcome_cap = outcomes;
	}
	w->claim_buf = MemoryContextAlloc(TopMemoryContext, sizeof(SwClaimed) * claim);
	/* A release hands back at most the whole ready list. */
	w->release_ids = MemoryContextAlloc(TopMemoryContext, sizeof(int64) * 2 * claim);
	w->release_ms = MemoryContextAlloc(TopMemoryContext, sizeof(int) * 2 * claim);
	w->claim_cap = claim;
}

static void
restart_cursor(WorkerState *w, TimestampTz now)
{
	w->cursor.at = DT_NOBEGIN;
	w->cursor.id = 0;
	w->restart_by = TimestampTzPlusMilliseconds(now, CURSOR_RESTART_MS);
}

/*
 * Fill the ready list up to claim_cap: one claim transaction for many
 * deliveries, not one per free slot.
 */
static void
claim(WorkerState *w, TimestampTz now)
{
	Batch		   *batch;
	MemoryContext	cxt;
	int				want = w->claim_cap - w->nready;
	int				n;
	bool			from_start;
	Host		   *host;
	const char	  **full = NULL;
	int				nfull = 0;
	HASH_SEQ_STATUS seq;
	int				per_host = host_slots();
	TimestampTz		oldest_xact = DT_NOEND;

	/*
	 * Destinations with every slot busy and as many deliveries waiting as
	 * they may keep: the claim passes over theirs (they stay pending and in
	 * order), rather than claiming them only to hand them back.
	 */
	hash_seq_init(&seq, w->hosts);
	while ((host = hash_seq_search(&seq)) != NULL)
		if (host->key != NULL && host->in_flight >= per_host &&
			host->waiting >= host_keep(host, per_host))
		{
			if (full == NULL)
				full = palloc(sizeof(char *) * hash_get_num_entries(w->hosts));
			full[nfull++] = host->key;
		}

	/*
	 * A transaction that began before the cursor's position may have
	 * committed deliveries behind it since: go back to the beginning now and
	 * then, and whenever the cursor reaches the end.
	 */
	if (now >= w->restart_by)
		restart_cursor(w, now);
	from_start = w->cursor.at == DT_NOBEGIN;
	/* Read before the claim's snapshot: see below. */
	if (nfull > 0)
		oldest_xact = sw_queue_oldest_xact_start();
	cxt = AllocSetContextCreate(w->loop_cxt, "seriesweb claim batch", ALLOCSET_DEFAULT_SIZES);
	w->last_claim = now;
	n = sw_queue_claim(want, &w->cursor, full, nfull, w->claim_buf, cxt);
	if (full)
		pfree(full);
	if (n == want)
		w->next_due = now;
	else if (nfull > 0)
	{
		/*
		 * What was passed over stays due: a claim from the start would read
		 * it all again, and the next one at once, for as long as those
		 * destinations stay full.  Go on from the latest point nothing
		 * invisible to this claim can be due before (the start of the oldest
		 * transaction then in progress in this database), and look at what
		 * was passed over again when the full destinations' waiting
		 * deliveries may have been started (READY_HORIZON_MS).
		 */
		TimestampTz floor = Min(now, oldest_xact);

		if (w->cursor.at < floor)
		{
			w->cursor.at = floor;
			w->cursor.id = 0;
		}
		w->restart_by = Min(w->restart_by, TimestampTzPlusMilliseconds(now, READY_HORIZON_MS));
		w->next_due = w->restart_by;
	}
	else
	{
		restart_cursor(w, now);
		w->next_due = from_start ? sw_queue_next_due() : now;
	}
	w->next_due = Min(w->next_due, TimestampTzPlusMilliseconds(now, IDLE_LOOK_MS));
	if (n == 0)
	{
		MemoryContextDelete(cxt);
		return;
	}

	MemoryContextSwitchTo(cxt);
	batch = palloc(sizeof(Batch));
	batch->cxt = cxt;
	batch->unrecorded = n;
	for (int i = 0; i < n; i++)
	{
		Job *job = palloc0(sizeof(Job));

		job->claimed = w->claim_buf[i];
		job->batch = batch;
		job->host = host_of(job->claimed.url);
		host = get_host(w, job->host);
		if (host->key == NULL)
			host->key = host_key(job->claimed.url, w->loop_cxt);
		host->waiting++;
		dlist_push_tail(&w->ready, &job->node);
		w->nready++;
	}
	MemoryContextSwitchTo(w->loop_cxt);
	w->counts_dirty = true;
}

static void
housekeeping(WorkerState *w, TimestampTz now)
{
	if (ms_until(TimestampTzPlusMilliseconds(w->last_recover, RECOVER_EVERY_MS), now) == 0)
	{
		sw_queue_recover();
		w->last_recover = now;
	}
	if (w->counts_dirty &&
		ms_until(TimestampTzPlusMilliseconds(w->last_fold, FOLD_EVERY_MS), now) == 0)
	{
		sw_queue_fold_counts();
		w->last_fold = now;
		w->counts_dirty = false;
	}
	if (ms_until(TimestampTzPlusMilliseconds(w->last_purge, PURGE_EVERY_MS), now) == 0)
	{
		int64 purged = sw_queue_purge(sw_retention_s);

		if (purged > 0)
			ereport(LOG, (errmsg("seriesweb: purged %lld deliveries finished more than %d seconds "
								 "ago (seriesweb.retention)",
								 (long long) purged, sw_retention_s)));
		w->last_purge = now;
	}
}

static bool
should_record(WorkerState *w, TimestampTz now)
{
	if (w->noutcomes == 0)
		return false;
	return w->noutcomes >= RECORD_BATCH ||
		   ms_until(TimestampTzPlusMilliseconds(w->first_outcome_at, RECORD_DELAY_MS), now) == 0;
}

static void
worker_loop(WorkerState *w)
{
	for (;;)
	{
		TimestampTz now;
		int			in_flight;
		int			room;

		handle_signals(w);
		if (ShutdownRequestPending)
			break;

		/* Reset before claiming: a commit after this point wakes us again. */
		if (MyLatch->is_set)
		{
			ResetLatch(MyLatch);
			w->next_due =
				Min(w->next_due, TimestampTzPlusMilliseconds(w->last_claim, CLAIM_GATHER_MS));
		}
		now = GetCurrentTimestamp();
		ensure_buffers(w);
		start_ready(w);
		/*
		 * Claim when slots stay free after the ready list had its turn, and
		 * the list is down to half: claims come in big batches.
		 */
		in_flight = sw_sender_in_flight(w->sender);
		room = sw_max_concurrency - in_flight;
		if (now >= w->next_due && room > 0 && w->nready <= w->claim_cap / 2)
		{
			claim(w, now);
			start_ready(w);
			release_backlog(w, now);
		}

		if (sw_sender_in_flight(w->sender) > 0)
			sw_sender_run(w->sender, w->noutcomes > 0 ? 1 : BUSY_POLL_MS, on_done, w);
		sw_slot_set_in_flight(my_slot, sw_sender_in_flight(w->sender));

		now = GetCurrentTimestamp();
		if (should_record(w, now))
			record_outcomes(w);
		housekeeping(w, now);

		if (sw_sender_in_flight(w->sender) == 0 && w->nready == 0)
		{
			long timeout = ms_until(w->next_due, now);

			timeout = Min(timeout, FOLD_EVERY_MS);
			if (w->noutcomes > 0)
				timeout =
					Min(timeout,
						ms_until(TimestampTzPlusMilliseconds(w->first_outcome_at, RECORD_DELAY_MS),
								 now));
			if (timeout > 0)
				wait_for_latch(timeout);
		}
	}
	/* SIGTERM: keep what finished; what is in flight is sent again later. */
	record_outcomes(w);
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
	WorkerState w;
	Oid			database;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();

	my_slot = DatumGetInt32(arg);
	memcpy(&database, MyBgworkerEntry->bgw_extra, sizeof(Oid));
	sw_slot_set_state(my_slot, SW_WORKER_CONNECTING, "connecting to its database");
	before_shmem_exit(publish_exit, (Datum) 0);
	BackgroundWorkerInitializeConnectionByOid(database, InvalidOid, 0);
	StartTransactionCommand();
	my_database = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	pgstat_report_appname("seriesweb worker");
	fix_search_path();
	index_only_plans();

	wait_for_extension();
	sw_queue_recover();

	memset(&w, 0, sizeof(w));
	w.loop_cxt =
		AllocSetContextCreate(TopMemoryContext, "seriesweb worker", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(w.loop_cxt);
	w.sender = sw_sender_create();
	dlist_init(&w.ready);
	{
		HASHCTL ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(Host);
		ctl.hcxt = w.loop_cxt;
		w.hosts =
			hash_create("seriesweb destinations", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	w.owner = ResourceOwnerCreate(NULL, "seriesweb worker");
	w.last_fold = w.last_recover = GetCurrentTimestamp();
	w.last_purge = 0; /* purge at start, then every PURGE_EVERY_MS */
	restart_cursor(&w, w.last_fold);
	w.counts_dirty = true;
	sw_slot_set_state(my_slot, SW_WORKER_RUNNING, "sending deliveries");
	ereport(LOG, (errmsg("seriesweb worker sending deliveries of database \"%s\"", my_database)));

	PG_TRY();
	{
		worker_loop(&w);
	}
	PG_CATCH();
	{
		exit_if_dropped(w.loop_cxt);
	}
	PG_END_TRY();

	stop_worker(SW_WORKER_EXITED, "stopped by SIGTERM");
}
