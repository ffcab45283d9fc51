/*-------------------------------------------------------------------------
 *
 * queue.c
 *	  The worker's side of the delivery queue in seriesweb.deliveries: each
 *	  function runs one short transaction of its own.
 *
 * Claim due deliveries (pending -> sending, FOR UPDATE SKIP LOCKED), record
 * a batch of outcomes (one statement: delivery rows, attempt rows, counters,
 * last activity), hand claimed deliveries back or make them due sooner,
 * recover deliveries a crash left in sending, fold counter deltas, purge old
 * rows.  No transaction is ever open while a request is on the network.
 * The matcher's side, which inserts the deliveries in the event's
 * transaction, is enqueue.c; the counter deltas are written by counters.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "plans.h"
#include "queue.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

/* ------------------------------------------------------------------------
 * The worker's transactions
 * ------------------------------------------------------------------------
 */

/*
 * Order matters: the statement timestamp first (now() of the transaction),
 * then the transaction, then SPI, then a snapshot for the queries; the
 * activity is reported so pg_stat_activity shows what the worker does.
 */
static MemoryContext worker_cxt;

void
sw_worker_tx_begin(const char *activity)
{
	worker_cxt = CurrentMemoryContext;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "seriesweb: SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
sw_worker_tx_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	pgstat_report_activity(STATE_IDLE, NULL);
	/* Commit leaves TopMemoryContext current; the caller's is wanted. */
	MemoryContextSwitchTo(worker_cxt);
}

/*
 * Claims and releases need not wait for their commit record to reach disk:
 * if a crash loses one, the rows are pending again (or still sending, which
 * the next start turns into pending), and the worst outcome is a second
 * send, which at-least-once delivery allows.  Outcomes are recorded with
 * the server's synchronous_commit.
 */
/* clang-format off */
static const char async_commit_sql[] =
	"SET LOCAL synchronous_commit = off";
/* clang-format on */

static void
async_commit(void)
{
	if (SPI_execute(async_commit_sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "seriesweb: could not set synchronous_commit");
}

/*
 * The record, release and hurry statements join a batch (arrays, unnested)
 * with the deliveries of the same ids.  A generic plan cannot see the batch
 * size and nests a loop that rescans the batch for every delivery; the join
 * is hashed instead, both sides at most one batch long (the ids are also an
 * index condition on the deliveries, so the rows in sending are not all
 * read).
 */
/* clang-format off */
static const char join_batch_by_hash_sql[] =
	"SET LOCAL enable_nestloop = off";
/* clang-format on */

static void
join_batch_by_hash(void)
{
	if (SPI_execute(join_batch_by_hash_sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "seriesweb: could not set enable_nestloop");
}

static Datum
int64_array(const int64 *values, int n)
{
	Datum *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int64GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

static Datum
int32_array(const int *values, int n)
{
	Datum *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Int32GetDatum(values[i]);
	return PointerGetDatum(construct_array(d, n, INT4OID, 4, true, TYPALIGN_INT));
}

/* ------------------------------------------------------------------------
 * Claiming
 * ------------------------------------------------------------------------
 */

/*
 * Claims are marked with the claiming worker's start time: a delivery in
 * sending that this worker did not claim was claimed by one that is gone
 * (a crash, an immediate stop, a standby's promotion) or came from a dump,
 * and nobody will record it.  It is pending again, due now.
 */
static Datum
claim_token(void)
{
	return Int64GetDatum((int64) MyStartTimestamp);
}

static SPIPlanPtr recover_plan;

/* clang-format off */
static const char recover_sql[] =
	"UPDATE seriesweb.deliveries SET status = 'pending', next_attempt_at = now() "
	" WHERE status = 'sending' AND claimed_by IS DISTINCT FROM $1";
/* clang-format on */

void
sw_queue_recover(void)
{
	static const Oid argtypes[1] = {INT8OID};
	Datum			 token = claim_token();

	sw_worker_tx_begin("seriesweb: recover deliveries nobody is sending");
	sw_plan(&recover_plan, recover_sql, 1, argtypes);
	sw_execute(recover_plan, &token, NULL, false, 0, SPI_OK_UPDATE);
	if (SPI_processed > 0)
		ereport(LOG, (errmsg("seriesweb: %llu deliveries interrupted by a stop or crash, or "
							 "restored while being sent, will be sent again",
							 (unsigned long long) SPI_processed)));
	sw_worker_tx_commit();
}

static SPIPlanPtr claim_plan;

/*
 * One generic plan, which assumes LIMIT $1 is a tenth of the table: the ids
 * are an array, not a join that would then read the whole table.
 */
/* clang-format off */
static const char claim_sql[] =
	"UPDATE seriesweb.deliveries d SET status = 'sending', claimed_by = $5 "
	" WHERE d.delivery_id = ANY (ARRAY("
	"         SELECT delivery_id FROM seriesweb.deliveries "
	"          WHERE status = 'pending' AND next_attempt_at <= now() "
	"            AND (next_attempt_at, delivery_id) > ($2, $3) "
	"            AND split_part(url, '/', 1) || '//' || split_part(url, '/', 3) "
	"                <> ALL ($4) "
	"            AND split_part(url, '?', 1) <> ALL ($4) "
	"          ORDER BY next_attempt_at, delivery_id "
	"          LIMIT $1 FOR UPDATE SKIP LOCKED)) "
	"RETURNING d.delivery_id, d.block_id, d.attempts, d.max_attempts, "
	"          d.method, d.url, d.headers, d.body, "
	"          (SELECT b.secret FROM seriesweb.blocks b WHERE b.block_id = d.block_id), "
	"          'msg_' || d.delivery_id::text || '_' "
	"            || to_hex((extract(epoch FROM d.created_at) * 1000000)::bigint), "
	"          d.next_attempt_at";
/* clang-format on */

/* The arguments of claim_sql; allocated in the transaction, gone with it. */
static void
claim_args(Datum *args, int limit, const SwClaimCursor *cursor, const char **skip, int nskip)
{
	Datum *skipd = palloc(sizeof(Datum) * Max(nskip, 1));

	for (int i = 0; i < nskip; i++)
		skipd[i] = CStringGetTextDatum(skip[i]);
	args[0] = Int32GetDatum(limit);
	args[1] = TimestampTzGetDatum(cursor->at);
	args[2] = Int64GetDatum(cursor->id);
	args[3] = PointerGetDatum(construct_array(skipd, nskip, TEXTOID, -1, false, TYPALIGN_INT));
	args[4] = claim_token();
}

static char *
claimed_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool  isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? pstrdup("") : TextDatumGetCString(d);
}

static void
claimed_headers(HeapTuple tup, TupleDesc desc, int col, SwClaimed *c)
{
	bool   isnull;
	Datum  d = SPI_getbinval(tup, desc, col, &isnull);
	Datum *elems;
	bool  *elnulls;

	c->nheaders = 0;
	c->headers = NULL;
	if (isnull)
		return;
	deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &elnulls,
					  &c->nheaders);
	c->headers = palloc(sizeof(char *) * Max(c->nheaders, 1));
	for (int i = 0; i < c->nheaders; i++)
		c->headers[i] = elnulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]);
}

/* Copy a row claim_sql returned into c, in the current memory context. */
static void
copy_claimed(HeapTuple tup, TupleDesc desc, SwClaimed *c)
{
	bool isnull;

	c->delivery_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
	c->block_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	c->attempts = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
	c->max_attempts = DatumGetInt32(SPI_getbinval(tup, desc, 4, &isnull));
	c->method = claimed_text(tup, desc, 5);
	c->url = claimed_text(tup, desc, 6);
	claimed_headers(tup, desc, 7, c);
	c->body = claimed_text(tup, desc, 8);
	c->body_len = strlen(c->body);
	c->secret = SPI_getvalue(tup, desc, 9);
	c->webhook_id = claimed_text(tup, desc, 10);
}

/* RETURNING is in no particular order: keep the last in due order. */
static void
advance_cursor(SwClaimCursor *cursor, HeapTuple tup, TupleDesc desc, int64 delivery_id)
{
	bool		isnull;
	TimestampTz due = DatumGetTimestampTz(SPI_getbinval(tup, desc, 11, &isnull));

	if (due > cursor->at || (due == cursor->at && delivery_id > cursor->id))
	{
		cursor->at = due;
		cursor->id = delivery_id;
	}
}

/*
 * Claim up to limit due deliveries after the cursor, in due order, passing
 * over those whose destination ("scheme://host:port") or path (the URL up
 * to any '?') is one of the nskip in skip, and move the cursor past them;
 * their copies are allocated in cxt.
 */
int
sw_queue_claim(int limit, SwClaimCursor *cursor, const char **skip, int nskip, SwClaimed *out,
			   MemoryContext cxt)
{
	static const Oid argtypes[5] = {INT4OID, TIMESTAMPTZOID, INT8OID, TEXTARRAYOID, INT8OID};
	Datum			 args[5];
	uint64			 n;

	sw_worker_tx_begin("seriesweb: claim due deliveries");
	async_commit();
	claim_args(args, limit, cursor, skip, nskip);
	sw_plan(&claim_plan, claim_sql, 5, argtypes);
	n = sw_execute(claim_plan, args, NULL, false, 0, SPI_OK_UPDATE_RETURNING);

	MemoryContextSwitchTo(cxt);
	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;

		copy_claimed(tup, desc, &out[i]);
		advance_cursor(cursor, tup, desc, out[i].delivery_id);
	}
	sw_worker_tx_commit();
	return (int) n;
}

/* ------------------------------------------------------------------------
 * Recording outcomes, handing deliveries back
 * ------------------------------------------------------------------------
 */

static SPIPlanPtr record_plan;

/*
 * Record a batch of outcomes in one statement and one transaction: the
 * deliveries' new state, one attempt row each, the sent/failed counters and
 * each block's latest activity.
 */
/* clang-format off */
static const char record_sql[] =
	"WITH r AS ("
	"  SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
	"    AS r(delivery_id, attempt, status, next_at, started_at, finished_at, "
	"         duration_ms, response_status, error, response_body, summary)), "
	"u AS ("
	"  UPDATE seriesweb.deliveries d "
	"     SET status = r.status, attempts = r.attempt, "
	"         next_attempt_at = coalesce(r.next_at, d.next_attempt_at), "
	"         finished_at = CASE WHEN r.status IN ('sent', 'failed') THEN r.finished_at END, "
	"         response_status = r.response_status, last_error = r.error "
	"    FROM r WHERE d.delivery_id = r.delivery_id AND d.delivery_id = ANY ($1) "
	"     AND d.status = 'sending' "
	"  RETURNING d.delivery_id, d.block_id, d.series_id, r.status, r.finished_at, r.summary), "
	"a AS ("
	"  INSERT INTO seriesweb.delivery_attempts "
	"         (delivery_id, attempt, started_at, duration_ms, response_status, error, response_body) "
	"  SELECT delivery_id, attempt, started_at, duration_ms, response_status, error, response_body "
	"    FROM r JOIN u USING (delivery_id)), "
	"c AS ("
	"  INSERT INTO seriesweb.block_counts (block_id, series_id, sent, failed) "
	"  SELECT block_id, series_id, count(*) FILTER (WHERE status = 'sent'), "
	"         count(*) FILTER (WHERE status = 'failed') "
	"    FROM u WHERE status <> 'pending' GROUP BY block_id, series_id) "
	"INSERT INTO seriesweb.block_activity AS ba (block_id, last_sent_at, last_failed_at, last_error) "
	"SELECT block_id, max(finished_at) FILTER (WHERE status = 'sent'), "
	"       max(finished_at) FILTER (WHERE status = 'failed'), "
	"       (array_agg(summary ORDER BY finished_at DESC) FILTER (WHERE status = 'failed'))[1] "
	"  FROM u WHERE status <> 'pending' GROUP BY block_id "
	"ON CONFLICT (block_id) DO UPDATE "
	"   SET last_sent_at = greatest(ba.last_sent_at, EXCLUDED.last_sent_at), "
	"       last_failed_at = greatest(ba.last_failed_at, EXCLUDED.last_failed_at), "
	"       last_error = CASE WHEN EXCLUDED.last_failed_at >= coalesce(ba.last_failed_at, '-infinity') "
	"                         THEN EXCLUDED.last_error ELSE ba.last_error END";
/* clang-format on */

/* The columns of record_sql's unnest, one row per outcome. */
typedef struct RecordArrays
{
	Datum *v[11];
	bool  *null[11];
} RecordArrays;

static Datum
build_array(Datum *values, bool *nulls, int n, Oid type)
{
	int	  dims[1] = {n};
	int	  lbs[1] = {1};
	int16 typlen;
	bool  typbyval;
	char  typalign;

	get_typlenbyvalalign(type, &typlen, &typbyval, &typalign);
	return PointerGetDatum(
		construct_md_array(values, nulls, 1, dims, lbs, type, typlen, typbyval, typalign));
}

static void
fill_outcome_row(RecordArrays *a, int i, const SwOutcome *o)
{
	for (int c = 0; c < 11; c++)
		a->null[c][i] = false;
	a->v[0][i] = Int64GetDatum(o->delivery_id);
	a->v[1][i] = Int32GetDatum(o->attempt);
	a->v[2][i] = CStringGetTextDatum(o->status);
	a->v[3][i] = TimestampTzGetDatum(o->next_attempt_at);
	a->null[3][i] = strcmp(o->status, "pending") != 0;
	a->v[4][i] = TimestampTzGetDatum(o->started_at);
	a->v[5][i] = TimestampTzGetDatum(o->finished_at);
	a->v[6][i] = Float8GetDatum(o->duration_ms);
	a->v[7][i] = Int32GetDatum(o->response_status);
	a->null[7][i] = o->response_status == 0;
	a->v[8][i] = o->error ? CStringGetTextDatum(o->error) : (Datum) 0;
	a->null[8][i] = o->error == NULL;
	a->v[9][i] = o->response_body ? CStringGetTextDatum(o->response_body) : (Datum) 0;
	a->null[9][i] = o->response_body == NULL;
	a->v[10][i] = o->summary ? CStringGetTextDatum(o->summary) : (Datum) 0;
	a->null[10][i] = o->summary == NULL;
}

/* The arguments of record_sql: the n outcomes, column by column. */
static void
record_args(const SwOutcome *outcomes, int n, Datum *args)
{
	static const Oid elemtypes[11] = {INT8OID,		  INT4OID,		  TEXTOID,	 TIMESTAMPTZOID,
									  TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, INT4OID,
									  TEXTOID,		  TEXTOID,		  TEXTOID};
	RecordArrays	 a;

	for (int c = 0; c < 11; c++)
	{
		a.v[c] = palloc(sizeof(Datum) * n);
		a.null[c] = palloc(sizeof(bool) * n);
	}
	for (int i = 0; i < n; i++)
		fill_outcome_row(&a, i, &outcomes[i]);
	for (int c = 0; c < 11; c++)
		args[c] = build_array(a.v[c], a.null[c], n, elemtypes[c]);
}

void
sw_queue_record(SwOutcome *outcomes, int n)
{
	static const Oid argtypes[11] = {INT8ARRAYOID,		  INT4ARRAYOID,		   TEXTARRAYOID,
									 TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID,
									 FLOAT8ARRAYOID,	  INT4ARRAYOID,		   TEXTARRAYOID,
									 TEXTARRAYOID,		  TEXTARRAYOID};
	Datum			 args[11];

	if (n == 0)
		return;
	sw_worker_tx_begin("seriesweb: record delivery outcomes");
	join_batch_by_hash();
	record_args(outcomes, n, args);
	sw_plan(&record_plan, record_sql, 11, argtypes);
	sw_execute(record_plan, args, NULL, false, 0, SPI_OK_INSERT);
	sw_worker_tx_commit();
}

static SPIPlanPtr release_plan;

/*
 * Put claimed deliveries that were not sent back in the queue, each due
 * again after its delay; not an attempt.
 */
/* clang-format off */
static const char release_sql[] =
	"UPDATE seriesweb.deliveries d "
	"   SET status = 'pending', next_attempt_at = now() + r.ms::float8 * interval '1 millisecond' "
	"  FROM unnest($1, $2) AS r(id, ms) "
	" WHERE d.delivery_id = r.id AND d.delivery_id = ANY ($1) AND d.status = 'sending'";
/* clang-format on */

void
sw_queue_release(const int64 *ids, const int *delay_ms, int n)
{
	static const Oid argtypes[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum			 args[2];

	sw_worker_tx_begin("seriesweb: hand back deliveries waiting for a busy destination");
	async_commit();
	join_batch_by_hash();
	args[0] = int64_array(ids, n);
	args[1] = int32_array(delay_ms, n);
	sw_plan(&release_plan, release_sql, 2, argtypes);
	sw_execute(release_plan, args, NULL, false, 0, SPI_OK_UPDATE);
	sw_worker_tx_commit();
}

static SPIPlanPtr hurry_plan;

/*
 * Make handed-back deliveries due now: their destination has free slots
 * sooner than predicted.  Only those still pending, not yet due and with the
 * attempts they had when handed back: a delivery since sent and waiting for
 * a retry keeps its retry delay.  Not an attempt.
 */
/* clang-format off */
static const char hurry_sql[] =
	"UPDATE seriesweb.deliveries d "
	"   SET next_attempt_at = now() "
	"  FROM unnest($1, $2) AS r (id, attempts) "
	" WHERE d.delivery_id = r.id AND d.delivery_id = ANY ($1) "
	"   AND d.status = 'pending' AND d.attempts = r.attempts "
	"   AND d.next_attempt_at > now()";
/* clang-format on */

void
sw_queue_hurry(const int64 *ids, const int *attempts, int n)
{
	static const Oid argtypes[2] = {INT8ARRAYOID, INT4ARRAYOID};
	Datum			 args[2];

	sw_worker_tx_begin("seriesweb: make due deliveries whose destination has free slots");
	/* As a release: a lost commit leaves them due at their predicted turn. */
	async_commit();
	join_batch_by_hash();
	args[0] = int64_array(ids, n);
	args[1] = int32_array(attempts, n);
	sw_plan(&hurry_plan, hurry_sql, 2, argtypes);
	sw_execute(hurry_plan, args, NULL, false, 0, SPI_OK_UPDATE);
	sw_worker_tx_commit();
}

/* ------------------------------------------------------------------------
 * When to claim next
 * ------------------------------------------------------------------------
 */

static SPIPlanPtr next_due_plan;

/* clang-format off */
static const char next_due_sql[] =
	"SELECT min(next_attempt_at) FROM seriesweb.deliveries WHERE status = 'pending'";
/* clang-format on */

/* When the next pending delivery is due; DT_NOEND when none is. */
TimestampTz
sw_queue_next_due(void)
{
	TimestampTz due = DT_NOEND;
	bool		isnull;
	Datum		d;

	sw_worker_tx_begin("seriesweb: look for the next due delivery");
	sw_plan(&next_due_plan, next_due_sql, 0, NULL);
	sw_execute(next_due_plan, NULL, NULL, true, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		due = DatumGetTimestampTz(d);
	sw_worker_tx_commit();
	return due;
}

static SPIPlanPtr oldest_xact_plan;

/*
 * When the oldest transaction in progress in another session of this
 * database started, autovacuum aside (DT_NOEND when none): whatever it
 * enqueues or makes due is due no earlier, since next_attempt_at is never
 * set before now().  Needs track_activities (the default); without it,
 * this says "none".
 */
/* clang-format off */
static const char oldest_xact_sql[] =
	"SELECT min(xact_start) FROM pg_stat_get_activity(NULL) "
	" WHERE datid = $1 AND pid <> pg_backend_pid() "
	"   AND backend_type <> 'autovacuum worker'";
/* clang-format on */

TimestampTz
sw_queue_oldest_xact_start(void)
{
	static const Oid argtypes[1] = {OIDOID};
	Datum			 arg = ObjectIdGetDatum(MyDatabaseId);
	TimestampTz		 oldest = DT_NOEND;
	bool			 isnull;
	Datum			 d;

	sw_worker_tx_begin("seriesweb: look for the oldest transaction in progress");
	sw_plan(&oldest_xact_plan, oldest_xact_sql, 1, argtypes);
	sw_execute(oldest_xact_plan, &arg, NULL, true, 1, SPI_OK_SELECT);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		oldest = DatumGetTimestampTz(d);
	sw_worker_tx_commit();
	return oldest;
}

/* ------------------------------------------------------------------------
 * Housekeeping
 * ------------------------------------------------------------------------
 */

/* Fold the counter deltas (counters.c) into one row per block. */
/* clang-format off */
static const char fold_counts_sql[] =
	"WITH d AS (DELETE FROM seriesweb.block_counts RETURNING *) "
	"INSERT INTO seriesweb.block_counts "
	"       (block_id, series_id, entered, reached, sent, failed, waiting, not_matched) "
	"SELECT block_id, series_id, sum(entered), sum(reached), sum(sent), sum(failed), "
	"       sum(waiting), sum(not_matched) "
	"  FROM d GROUP BY block_id, series_id";
/* clang-format on */

void
sw_queue_fold_counts(void)
{
	sw_worker_tx_begin("seriesweb: fold block counters");
	if (SPI_execute(fold_counts_sql, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "seriesweb: could not fold block counters");
	sw_worker_tx_commit();
}

/*
 * Purge finished deliveries older than the retention, with their attempts,
 * in slices of 10,000 rows per transaction so that no purge holds locks for
 * long.  Counters are separate and unaffected.  Not saved: it runs rarely,
 * and %d is the retention in seconds.
 */
/* clang-format off */
static const char purge_sql[] =
	"WITH old AS ("
	"  DELETE FROM seriesweb.deliveries WHERE delivery_id IN ("
	"    SELECT delivery_id FROM seriesweb.deliveries "
	"     WHERE finished_at < now() - make_interval(secs => %d) "
	"     LIMIT 10000) "
	"  RETURNING delivery_id), "
	"a AS (DELETE FROM seriesweb.delivery_attempts a USING old "
	"       WHERE a.delivery_id = old.delivery_id) "
	"SELECT count(*) FROM old";
/* clang-format on */

int64
sw_queue_purge(int retention_s)
{
	int64  total = 0;
	uint64 n;

	do
	{
		char *sql = psprintf(purge_sql, retention_s);
		bool  isnull;

		sw_worker_tx_begin("seriesweb: purge old deliveries");
		if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "seriesweb: could not purge old deliveries");
		n = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
		sw_worker_tx_commit();
		total += n;
	} while (n == 10000);
	return total;
}
