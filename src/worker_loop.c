/*-------------------------------------------------------------------------
 *
 * worker_loop.c
 *	  The worker's loop: claim due deliveries, send them, record what each
 *	  attempt did, and keep the queue tidy.
 *
 * worker.c runs the loop once the queue is recovered.  It claims due
 * deliveries while there is room under seriesweb.max_concurrency (one short
 * transaction), turns each into a request (signed when its block has a
 * secret) and sends them with the multi sender outside any transaction,
 * and records finished attempts in groups (one short transaction each);
 * what an attempt means for its delivery, retry.c decides.  A slow request
 * holds only its own slot; what a destination and a path may hold, and
 * what is handed back to the queue until their slots free up,
 * destinations.c decides, and deliveries handed back are made due again as
 * soon as their slots are free.  Committing backends set the worker's
 * latch (wake.c), so new work is claimed at once, or CLAIM_GATHER_MS after
 * the previous claim (a stream of commits is claimed a few at a time, not
 * one per transaction); a timer covers retries that come due.  Between
 * times it folds the counters behind the stats views, puts back, every
 * RECOVER_EVERY_MS, deliveries in sending that it did not claim (as a
 * restored dump may hold), and purges what seriesweb.retention lets go.
 * When the earliest timer of the live series is due, or a backend committed
 * an earlier one, it releases due timers, a batch per transaction
 * (release.c), each batch once the sender has room for its deliveries: the
 * first users of a large release are sent while the rest wait.
 *
 * The queue's transactions never keep the sender waiting for long: their
 * lock waits end after SW_QUEUE_LOCK_TIMEOUT_MS, and a step that could not
 * get its lock (VACUUM FULL, ALTER TABLE or pg_repack holding the queue) is
 * rolled back and tried again later, what it was to write kept meanwhile;
 * the sender goes on reading answers and starting what is claimed.  What
 * still stops the worker (a slow fsync) the sender does not charge to the
 * requests in flight (sender.c).
 *
 * Memory: each claim batch has its own context, deleted once every delivery
 * in it has been recorded or handed back; the outcome buffer is reused.
 * SIGHUP reloads settings; SIGTERM ends the loop once what finished is
 * recorded.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "access/xact.h"
#include "destinations.h"
#include "lib/ilist.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "queue.h"
#include "release.h"
#include "retry.h"
#include "sender.h"
#include "settings.h"
#include "shmem.h"
#include "sign.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"
#include "worker_loop.h"

/* Outcomes recorded per transaction at most. */
#define OUTCOMES_PER_RECORD 512
/* A finished attempt waits at most this long to be recorded. */
#define RECORD_DELAY_MS 10
/*
 * After a claim, new work waits this long for the next one: under a stream
 * of one-event commits, each claim then takes what several of them queued.
 */
#define CLAIM_GATHER_MS 2
/* While requests are in flight, look at the latch this often. */
#define BUSY_POLL_MS 5
/* Claims start from the beginning of the due order at least this often. */
#define CURSOR_RESTART_MS 1000
/* Look at the queue at least this often (COMMIT PREPARED wakes nobody). */
#define IDLE_LOOK_MS 5000
#define FOLD_EVERY_MS 2000
/* Deliveries in sending that no running worker claimed are looked for this often. */
#define RECOVER_EVERY_MS 10000
#define PURGE_EVERY_MS (10 * 60 * 1000)
/* After a lock wait ended (SW_QUEUE_LOCK_TIMEOUT_MS), the queue is left alone this long. */
#define QUEUE_RETRY_MS 250
/* Timers are looked at this often at least (COMMIT PREPARED wakes nobody). */
#define TIMERS_LOOK_MS (60 * 1000)
/* Due timers wait at most this long for the sender to want their deliveries. */
#define TIMERS_HOLD_MS 250

/*
 * The deliveries one claim took: their memory lives until the last of them
 * is recorded or handed back.
 */
typedef struct ClaimBatch
{
	MemoryContext cxt;
	int			  unrecorded;
} ClaimBatch;

typedef struct Job
{
	SwTransfer	transfer; /* first: the sender hands it back */
	SwClaimed	claimed;
	ClaimBatch *claim_batch;
	SwRoute		route; /* its destination and path (destinations.c) */
	dlist_node	node;  /* in the ready list until started */
} Job;

struct SwWorkerLoop
{
	int				slot; /* the worker's, in shared memory */
	SwSender	   *sender;
	ResourceOwner	owner; /* for work done between transactions */
	MemoryContext	loop_cxt;
	SwClaimed	   *claim_buf; /* claim_alloc entries */
	int				claim_cap; /* deliveries a claim fills the ready list up to */
	int				claim_alloc;
	dlist_head		ready; /* claimed, waiting for a slot */
	int				nready;
	SwDestinations *dests;
	int64		   *release_ids; /* deliveries handed back to the queue */
	int			   *release_ms;
	int				nrelease;
	int64		   *pull_ids; /* handed back, to be made due now */
	int			   *pull_attempts;
	int				npull;
	SwOutcome	   *outcomes; /* outcome_cap entries */
	Job			  **outcome_jobs;
	int				outcome_cap;
	int				noutcomes;
	TimestampTz		first_outcome_at;
	TimestampTz		next_due;
	TimestampTz		last_claim;
	SwClaimCursor	cursor;
	TimestampTz		restart_by; /* when claims start from the beginning again */
	TimestampTz		last_fold;
	TimestampTz		last_recover;
	TimestampTz		last_purge;
	bool			counts_dirty;
	TimestampTz		next_timer;	   /* when timers are to be released next */
	TimestampTz		last_release;  /* of due timers */
	bool			queue_drained; /* the last claim took all that was due */
	TimestampTz		queue_free_at; /* no queue transaction before then */
	bool			queue_locked;  /* the last one could not get its lock */
};

static long
ms_until(TimestampTz when, TimestampTz now)
{
	if (when <= now)
		return 0;
	return (long) Min((when - now + 999) / 1000, (TimestampTz) INT_MAX);
}

/* Sleep until the latch is set, the timeout passes or the postmaster dies. */
static void
wait_for_latch(long timeout_ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms,
					 PG_WAIT_EXTENSION);
}

static void
handle_signals(SwWorkerLoop *w)
{
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		char *networks = pstrdup(sw_allowed_networks);

		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
		sw_sender_configure(w->sender);
		/* Open connections were allowed by the old list only. */
		if (strcmp(networks, sw_allowed_networks) != 0)
			sw_sender_forget_connections(w->sender);
		pfree(networks);
	}
}

/* ---- the queue's transactions ---- */

typedef void (*QueueStep)(SwWorkerLoop *w, void *arg);

static void
note_queue_locked(SwWorkerLoop *w, const char *why)
{
	if (!w->queue_locked)
	{
		ereport(LOG,
				(errmsg("seriesweb: the delivery queue is locked by another session; requests "
						"in flight are still read, and their outcomes recorded once it is free"),
				 errdetail("%s", why)));
		sw_slot_set_state(w->slot, SW_WORKER_RUNNING,
						  "waiting for a lock on the delivery queue; requests are still sent");
	}
	w->queue_locked = true;
	w->queue_free_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), QUEUE_RETRY_MS);
}

static void
note_queue_free(SwWorkerLoop *w)
{
	ereport(LOG, (errmsg("seriesweb: the delivery queue is free again")));
	sw_slot_set_state(w->slot, SW_WORKER_RUNNING, "sending deliveries");
	w->queue_locked = false;
}

/*
 * Run one step of queue.c (its own transactions).  A lock it would wait for
 * longer than lock_timeout fails it: the transaction is rolled back (which
 * also ends its SPI connection and snapshot), nothing is done, and false
 * returned; the caller keeps what the step was to write and tries again
 * after queue_free_at.  Any other error ends the worker, as ever.  Nothing
 * is tried before queue_free_at.
 */
static bool
queue_step(SwWorkerLoop *w, QueueStep step, void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile bool done = false;

	if (GetCurrentTimestamp() < w->queue_free_at)
		return false;
	PG_TRY();
	{
		step(w, arg);
		done = true;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		pgstat_report_activity(STATE_IDLE, NULL);
		note_queue_locked(w, edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	if (done && w->queue_locked)
		note_queue_free(w);
	return done;
}

/* ---- outcomes ---- */

static void
attempt_finished(SwTransfer *t, void *arg)
{
	SwWorkerLoop *w = arg;
	Job			 *job = (Job *) t;
	TimestampTz	  now = GetCurrentTimestamp();

	sw_dest_finished(w->dests, job->route, t->duration_ms, now);
	if (w->noutcomes == 0)
		w->first_outcome_at = now;
	sw_retry_decide(&job->claimed, &job->transfer, &w->outcomes[w->noutcomes]);
	/* A retry is due later: make sure we look for it then. */
	if (strcmp(w->outcomes[w->noutcomes].status, "pending") == 0)
		w->next_due = Min(w->next_due, w->outcomes[w->noutcomes].next_attempt_at);
	w->outcome_jobs[w->noutcomes] = job;
	w->noutcomes++;
}

/* A job's delivery is recorded or handed back: its claim batch may go. */
static void
forget_job(Job *job)
{
	ClaimBatch *batch = job->claim_batch;

	if (--batch->unrecorded == 0)
		MemoryContextDelete(batch->cxt);
}

static void
record_step(SwWorkerLoop *w, void *arg)
{
	sw_queue_record(w->outcomes, w->noutcomes);
}

/* Record the finished attempts; false (all kept) if the queue is locked. */
static bool
record_outcomes(SwWorkerLoop *w)
{
	if (w->noutcomes == 0)
		return true;
	if (!queue_step(w, record_step, NULL))
		return false;
	for (int i = 0; i < w->noutcomes; i++)
		forget_job(w->outcome_jobs[i]);
	w->noutcomes = 0;
	w->counts_dirty = true;
	return true;
}

/* ---- sending ---- */

/*
 * Where a claimed delivery becomes a request: its method, URL, headers and
 * body, signed when its block has a secret.
 */
static void
start_request(SwWorkerLoop *w, Job *job)
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
	sw_sender_start(w->sender, &job->transfer, attempt_finished, w);
}

/* Start ready deliveries, oldest first, while slots are free. */
static void
start_ready_jobs(SwWorkerLoop *w)
{
	dlist_mutable_iter it;
	TimestampTz		   now = GetCurrentTimestamp();

	dlist_foreach_modify(it, &w->ready)
	{
		Job *job = dlist_container(Job, node, it.cur);

		if (sw_sender_in_flight(w->sender) >= sw_max_concurrency)
			break;
		if (!sw_dest_may_start(job->route))
			continue;
		/* Outcomes must fit in the buffer: record before starting more. */
		if (w->noutcomes + sw_sender_in_flight(w->sender) >= w->outcome_cap && !record_outcomes(w))
			break;
		dlist_delete(&job->node);
		w->nready--;
		sw_dest_started(job->route, now);
		MemoryContextSwitchTo(job->claim_batch->cxt);
		start_request(w, job);
		MemoryContextSwitchTo(w->loop_cxt);
	}
}

/* ---- handing back ---- */

static void
release_step(SwWorkerLoop *w, void *arg)
{
	sw_queue_release(w->release_ids, w->release_ms, w->nrelease);
}

/*
 * Put the handed-back deliveries back in the queue.  While the queue is
 * locked they stay listed (and claims wait): never lost in "sending".
 */
static void
release_handed_back(SwWorkerLoop *w)
{
	if (w->nrelease > 0 && queue_step(w, release_step, NULL))
		w->nrelease = 0;
}

/*
 * Hand back deliveries that would wait behind a slow destination or path
 * for longer than the horizon (destinations.c says which, and until when):
 * the ready list does not fill up with them, and the queue keeps the order
 * for everyone else.  A fast destination keeps its whole backlog.
 */
static void
hand_back_backlog(SwWorkerLoop *w, TimestampTz now)
{
	dlist_mutable_iter it;

	sw_dest_begin_pass(w->dests);
	dlist_foreach_modify(it, &w->ready)
	{
		Job *job = dlist_container(Job, node, it.cur);
		int	 delay_ms;

		if (!sw_dest_hand_back(w->dests, job->route, job->claimed.delivery_id,
							   job->claimed.attempts, now, &delay_ms))
			continue;
		w->release_ids[w->nrelease] = job->claimed.delivery_id;
		w->release_ms[w->nrelease] = delay_ms;
		w->nrelease++;
		dlist_delete(&job->node);
		w->nready--;
		forget_job(job);
	}
	release_handed_back(w);
}

static void
hurry_step(SwWorkerLoop *w, void *arg)
{
	sw_queue_hurry(w->pull_ids, w->pull_attempts, w->npull);
}

/*
 * Deliveries handed back for a destination or path that has free slots now
 * (and nothing waiting for them) are made due at once and claimed next,
 * rather than waiting for the turn predicted when they were handed back.
 */
static void
pull_handed_back(SwWorkerLoop *w, TimestampTz now)
{
	w->npull = sw_dest_pull(w->dests, w->pull_ids, w->pull_attempts, w->claim_cap, now);
	if (w->npull > 0 && queue_step(w, hurry_step, NULL))
		w->next_due = now;
	/* If the queue is locked, they are due at their turn, as predicted. */
	w->npull = 0;
}

/* ---- claiming ---- */

static void *
grow_buffer(void *buf, Size size)
{
	return buf ? repalloc(buf, size) : MemoryContextAlloc(TopMemoryContext, size);
}

/*
 * Size the buffers for the settings.  They grow and never shrink: outcomes
 * and releases not yet written (the queue was locked) stay in them.
 */
static void
ensure_buffers(SwWorkerLoop *w)
{
	int claim = Max(4 * sw_max_concurrency, 512);
	int outcomes = sw_max_concurrency + OUTCOMES_PER_RECORD;

	w->claim_cap = claim;
	if (w->outcome_cap < outcomes)
	{
		w->outcomes = grow_buffer(w->outcomes, sizeof(SwOutcome) * outcomes);
		w->outcome_jobs = grow_buffer(w->outcome_jobs, sizeof(Job *) * outcomes);
		w->outcome_cap = outcomes;
	}
	if (w->claim_alloc < claim)
	{
		w->claim_buf = grow_buffer(w->claim_buf, sizeof(SwClaimed) * claim);
		/* A release hands back at most the whole ready list. */
		w->release_ids = grow_buffer(w->release_ids, sizeof(int64) * 2 * claim);
		w->release_ms = grow_buffer(w->release_ms, sizeof(int) * 2 * claim);
		w->pull_ids = grow_buffer(w->pull_ids, sizeof(int64) * claim);
		w->pull_attempts = grow_buffer(w->pull_attempts, sizeof(int) * claim);
		w->claim_alloc = claim;
	}
}

static void
restart_cursor(SwWorkerLoop *w, TimestampTz now)
{
	w->cursor.at = DT_NOBEGIN;
	w->cursor.id = 0;
	w->restart_by = TimestampTzPlusMilliseconds(now, CURSOR_RESTART_MS);
}

/* What a claim step is given and gives back. */
typedef struct ClaimArgs
{
	int			  want;
	const char	**full; /* destinations to pass over */
	int			  nfull;
	MemoryContext cxt;		   /* for the claimed copies */
	int			  n;		   /* out: claimed */
	TimestampTz	  oldest_xact; /* out: when nfull > 0 */
} ClaimArgs;

static void
claim_step(SwWorkerLoop *w, void *arg)
{
	ClaimArgs *a = arg;

	/* Read before the claim's snapshot: see go_on_past_full_destinations. */
	a->oldest_xact = a->nfull > 0 ? sw_queue_oldest_xact_start() : DT_NOEND;
	a->n = sw_queue_claim(a->want, &w->cursor, a->full, a->nfull, w->claim_buf, a->cxt);
}

static void
next_due_step(SwWorkerLoop *w, void *arg)
{
	*(TimestampTz *) arg = sw_queue_next_due();
}

/* Claimed deliveries join the ready list; their claim batch owns cxt. */
static void
add_claimed(SwWorkerLoop *w, MemoryContext cxt, int n)
{
	ClaimBatch *batch;

	MemoryContextSwitchTo(cxt);
	batch = palloc(sizeof(ClaimBatch));
	batch->cxt = cxt;
	batch->unrecorded = n;
	for (int i = 0; i < n; i++)
	{
		Job *job = palloc0(sizeof(Job));

		job->claimed = w->claim_buf[i];
		job->claim_batch = batch;
		job->route = sw_dest_claimed(w->dests, job->claimed.url);
		dlist_push_tail(&w->ready, &job->node);
		w->nready++;
	}
	MemoryContextSwitchTo(w->loop_cxt);
	w->counts_dirty = true;
}

/*
 * After a claim that passed over full destinations and did not fill up:
 * what was passed over stays due, and a claim from the start would read it
 * all again, and the next one at once, for as long as those destinations
 * stay full.  Go on from the latest point nothing invisible to this claim
 * can be due before (the start of the oldest transaction then in progress
 * in this database), and look at what was passed over again when the full
 * destinations' waiting deliveries may have been started
 * (SW_READY_HORIZON_MS).
 */
static void
go_on_past_full_destinations(SwWorkerLoop *w, TimestampTz now, const ClaimArgs *a)
{
	TimestampTz floor = Min(now, a->oldest_xact);

	if (w->cursor.at < floor)
	{
		w->cursor.at = floor;
		w->cursor.id = 0;
	}
	w->restart_by = Min(w->restart_by, TimestampTzPlusMilliseconds(now, SW_READY_HORIZON_MS));
	w->next_due = w->restart_by;
}

/* When to claim again, after the claim a (from the cursor's start if from_start). */
static void
schedule_next_claim(SwWorkerLoop *w, TimestampTz now, const ClaimArgs *a, bool from_start)
{
	TimestampTz due = now;

	w->queue_drained = a->n < a->want;
	if (a->n < a->want)
		sw_dest_claimed_all(w->dests);
	if (a->n == a->want)
		w->next_due = now;
	else if (a->nfull > 0)
		go_on_past_full_destinations(w, now, a);
	else
	{
		restart_cursor(w, now);
		if (from_start && !queue_step(w, next_due_step, &due))
			due = w->queue_free_at;
		w->next_due = due;
	}
	w->next_due = Min(w->next_due, TimestampTzPlusMilliseconds(now, IDLE_LOOK_MS));
}

/*
 * A claim of what the ready list has room for.  Destinations with every
 * slot busy and as many deliveries waiting as they may keep: the claim
 * passes over theirs (they stay pending and in order), rather than claiming
 * them only to hand them back.
 */
static void
begin_claim(SwWorkerLoop *w, ClaimArgs *a)
{
	memset(a, 0, sizeof(*a));
	a->want = w->claim_cap - w->nready;
	a->full = palloc(sizeof(char *) * Max(sw_dest_count(w->dests), 1));
	a->nfull = sw_dest_full(w->dests, a->full);
}

/*
 * Fill the ready list up to claim_cap: one claim transaction for many
 * deliveries, not one per free slot.
 */
static void
claim_due_deliveries(SwWorkerLoop *w, TimestampTz now)
{
	ClaimArgs a;
	bool	  from_start;

	begin_claim(w, &a);

	/*
	 * A transaction that began before the cursor's position may have
	 * committed deliveries behind it since: go back to the beginning now and
	 * then, and whenever the cursor reaches the end.
	 */
	if (now >= w->restart_by)
		restart_cursor(w, now);
	from_start = w->cursor.at == DT_NOBEGIN;
	a.cxt = AllocSetContextCreate(w->loop_cxt, "seriesweb claim batch", ALLOCSET_DEFAULT_SIZES);
	w->last_claim = now;
	if (!queue_step(w, claim_step, &a))
	{
		/* The queue is locked: nothing was claimed. */
		MemoryContextDelete(a.cxt);
		w->next_due = w->queue_free_at;
	}
	else
	{
		/* Into the ready list first: whatever fails next, none is lost. */
		if (a.n > 0)
			add_claimed(w, a.cxt, a.n);
		else
			MemoryContextDelete(a.cxt);
		schedule_next_claim(w, now, &a, from_start);
	}
	pfree(a.full);
}

/* ---- housekeeping ---- */

static void
fold_step(SwWorkerLoop *w, void *arg)
{
	sw_queue_fold_counts();
}

static void
recover_step(SwWorkerLoop *w, void *arg)
{
	sw_queue_recover();
}

static void
purge_step(SwWorkerLoop *w, void *arg)
{
	*(int64 *) arg = sw_queue_purge(sw_retention_s);
}

static void
housekeeping(SwWorkerLoop *w, TimestampTz now)
{
	int64 purged = 0;

	if (ms_until(TimestampTzPlusMilliseconds(w->last_recover, RECOVER_EVERY_MS), now) == 0 &&
		queue_step(w, recover_step, NULL))
		w->last_recover = now;
	if (w->counts_dirty &&
		ms_until(TimestampTzPlusMilliseconds(w->last_fold, FOLD_EVERY_MS), now) == 0 &&
		queue_step(w, fold_step, NULL))
	{
		w->last_fold = now;
		w->counts_dirty = false;
	}
	if (ms_until(TimestampTzPlusMilliseconds(w->last_purge, PURGE_EVERY_MS), now) == 0 &&
		queue_step(w, purge_step, &purged))
	{
		if (purged > 0)
			ereport(LOG, (errmsg("seriesweb: purged %lld deliveries finished more than %d seconds "
								 "ago (seriesweb.retention)",
								 (long long) purged, sw_retention_s)));
		w->last_purge = now;
	}
}

/* ---- timers ---- */

typedef struct ReleaseArgs
{
	int			released;
	TimestampTz next_due;
} ReleaseArgs;

static void
timers_step(SwWorkerLoop *w, void *arg)
{
	ReleaseArgs *r = arg;

	r->released = sw_release_due_timers(&r->next_due);
}

/*
 * Can the sender take the deliveries of another release?  Only when the last
 * claim took everything due (what the last release queued among it) and the
 * ready list is down to where the next claim refills it.  Releasing sooner
 * would not send anything sooner (one thread does both), only later what
 * was released first: with many users due at once, the sender would wait
 * until all were released.  So a large release goes a batch at a time,
 * each batch sent while the next one waits; other deliveries keeping the
 * sender busy hold due timers back TIMERS_HOLD_MS at most.
 */
static bool
sender_wants_release(SwWorkerLoop *w, TimestampTz now)
{
	return (w->queue_drained && w->nready <= w->claim_cap / 2) ||
		   now >= TimestampTzPlusMilliseconds(w->last_release, TIMERS_HOLD_MS);
}

/*
 * Release what is due, when the earliest timer is, or when a backend
 * committed an earlier one (the slot says), and the sender wants it.  While
 * it looks, the slot says it knows of none, so a timer committed meanwhile
 * tells it again.  Due timers that an event holds are skipped: looked at
 * again shortly.
 */
static void
release_due_timers(SwWorkerLoop *w, TimestampTz now)
{
	ReleaseArgs r;

	if (sw_slot_take_timers_changed(w->slot))
		w->next_timer = now;
	if (now < w->next_timer || now < w->queue_free_at || !sender_wants_release(w, now))
		return;
	sw_slot_set_next_timer(w->slot, DT_NOEND);
	if (!queue_step(w, timers_step, &r))
		return;
	sw_slot_set_next_timer(w->slot, r.next_due);
	w->last_release = now;
	now = GetCurrentTimestamp();
	w->next_timer = Min(r.next_due, TimestampTzPlusMilliseconds(now, TIMERS_LOOK_MS));
	if (r.released < SW_RELEASE_BATCH && w->next_timer <= now)
		w->next_timer = TimestampTzPlusMilliseconds(now, QUEUE_RETRY_MS);
	if (r.released > 0)
	{
		/* Its deliveries are due: claimed before the next release. */
		w->queue_drained = false;
		w->counts_dirty = true;
	}
}

/* ---- the loop ---- */

/* When finished attempts are to be recorded; DT_NOEND when there are none. */
static TimestampTz
record_due(SwWorkerLoop *w)
{
	TimestampTz due;

	if (w->noutcomes == 0)
		return DT_NOEND;
	due = w->noutcomes >= OUTCOMES_PER_RECORD
			  ? w->first_outcome_at
			  : TimestampTzPlusMilliseconds(w->first_outcome_at, RECORD_DELAY_MS);
	return Max(due, w->queue_free_at);
}

/* With nothing in flight or ready: sleep until there is something to do. */
static void
wait_for_work(SwWorkerLoop *w, TimestampTz now)
{
	long timeout = ms_until(w->next_due, now);

	timeout = Min(timeout, FOLD_EVERY_MS);
	/* Due timers wait for the queue to be free (and for the hold) too. */
	timeout = Min(timeout, ms_until(Max(w->next_timer, w->queue_free_at), now));
	if (w->noutcomes > 0)
		timeout = Min(timeout, ms_until(record_due(w), now));
	if (w->nrelease > 0)
		timeout = Min(timeout, ms_until(w->queue_free_at, now));
	if (timeout > 0)
		wait_for_latch(timeout);
}

/* After the ready list had its turn: claim more, if there is room. */
static void
fill_ready_list(SwWorkerLoop *w, TimestampTz now)
{
	int room = sw_max_concurrency - sw_sender_in_flight(w->sender);

	/* Deliveries handed back are back in the queue before more are claimed. */
	release_handed_back(w);
	if (room <= 0 || w->nrelease > 0 || now < w->queue_free_at)
		return;
	/* Slots still free may be for deliveries handed back before: those first. */
	pull_handed_back(w, now);
	/* Claim once the list is down to half: each claim takes many. */
	if (now >= w->next_due && w->nready <= w->claim_cap / 2)
	{
		claim_due_deliveries(w, now);
		start_ready_jobs(w);
		hand_back_backlog(w, now);
	}
}

/*
 * A committing backend set the latch: claim CLAIM_GATHER_MS after the last
 * claim.  Reset before claiming: a commit after this point wakes us again.
 */
static void
take_wakeup(SwWorkerLoop *w)
{
	if (MyLatch->is_set)
	{
		ResetLatch(MyLatch);
		w->next_due = Min(w->next_due, TimestampTzPlusMilliseconds(w->last_claim, CLAIM_GATHER_MS));
	}
}

SwWorkerLoop *
sw_worker_loop_create(MemoryContext cxt, int slot)
{
	SwWorkerLoop *w = MemoryContextAllocZero(cxt, sizeof(SwWorkerLoop));

	w->slot = slot;
	w->loop_cxt = cxt;
	w->sender = sw_sender_create();
	dlist_init(&w->ready);
	w->dests = sw_dest_create(w->loop_cxt);
	w->owner = ResourceOwnerCreate(NULL, "seriesweb worker");
	w->last_fold = w->last_recover = GetCurrentTimestamp();
	w->last_purge = 0; /* purge at start, then every PURGE_EVERY_MS */
	restart_cursor(w, w->last_fold);
	w->counts_dirty = true;
	w->queue_drained = true;
	return w;
}

void
sw_worker_loop_run(SwWorkerLoop *w)
{
	for (;;)
	{
		TimestampTz now;

		handle_signals(w);
		if (ShutdownRequestPending)
			break;

		take_wakeup(w);
		now = GetCurrentTimestamp();
		ensure_buffers(w);
		start_ready_jobs(w);
		fill_ready_list(w, now);

		/* Outcomes to record soon: look at the network briefly. */
		if (sw_sender_in_flight(w->sender) > 0)
			sw_sender_run(w->sender, w->noutcomes > 0 && now >= w->queue_free_at ? 1 : BUSY_POLL_MS,
						  attempt_finished, w);
		sw_slot_set_in_flight(w->slot, sw_sender_in_flight(w->sender));

		now = GetCurrentTimestamp();
		if (record_due(w) <= now)
			record_outcomes(w);
		housekeeping(w, now);
		release_due_timers(w, now);

		/* Idle, or nothing may start until the outcomes are recorded. */
		if (sw_sender_in_flight(w->sender) == 0 &&
			(w->nready == 0 || w->noutcomes >= w->outcome_cap))
			wait_for_work(w, now);
	}
	/* SIGTERM: keep what finished (one more try if the queue was locked). */
	w->queue_free_at = 0;
	record_outcomes(w);
	/* What is in flight, and what was to be handed back, is sent again later. */
}
