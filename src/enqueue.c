/*-------------------------------------------------------------------------
 *
 * enqueue.c
 *	  The matcher's side of the delivery queue: a user reaches a block, and
 *	  for a webhook its delivery is inserted, in the event's transaction.
 *
 * Reaching a block is one INSERT .. ON CONFLICT on seriesweb.progress that
 * returns a row only the first time, which makes "each block at most once
 * per user" hold under concurrency too.  For a webhook, sw_enqueue renders
 * the request for the user and writes the progress row and the delivery with
 * one statement, asking for the worker to be woken at commit (wake.c); a
 * webhook that cannot be rendered is stored failed, with the reason, and
 * counted.  sw_reach_many and sw_enqueue_many do the same for many users at
 * once, with one statement each (event_batch.c).  The worker's side of the
 * queue is queue.c.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "counters.h"
#include "enqueue.h"
#include "executor/spi.h"
#include "plans.h"
#include "users_cache.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "wake.h"

static SPIPlanPtr enqueue_plan;
static SPIPlanPtr enqueue_many_plan;
static SPIPlanPtr reach_plan;
static SPIPlanPtr reach_many_plan;
static SPIPlanPtr render_failed_plan;

static Datum
text_array(char **items, int n)
{
	Datum *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A delivery that cannot be rendered is stored failed, with the reason. */
static void
note_render_failure(int32 block_id, const char *error)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 args[2];

	args[0] = Int32GetDatum(block_id);
	args[1] = CStringGetTextDatum(error);
	sw_plan(&render_failed_plan,
			"INSERT INTO seriesweb.block_activity AS a (block_id, last_failed_at, last_error) "
			"VALUES ($1, now(), $2) ON CONFLICT (block_id) DO UPDATE "
			"   SET last_failed_at = EXCLUDED.last_failed_at, last_error = EXCLUDED.last_error",
			2, argtypes);
	sw_execute(render_failed_plan, args, NULL, false, 0, SPI_OK_INSERT);
}

/*
 * Record that a user reached a block, unless they had: rows from values,
 * returning those reached now.
 */
#define REACH_SQL(values)                                                                   \
	"INSERT INTO seriesweb.progress AS p (block_id, user_id, reached_at, event_id) " values \
	" ON CONFLICT (block_id, user_id) DO UPDATE "                                           \
	"    SET reached_at = EXCLUDED.reached_at, event_id = EXCLUDED.event_id "               \
	"  WHERE p.reached_at IS NULL RETURNING block_id, user_id"

/* The deliveries columns the enqueue statements write. */
#define DELIVERY_COLUMNS                                                                      \
	"INSERT INTO seriesweb.deliveries (delivery_id, series_id, block_id, user_id, event_id, " \
	"       status, method, url, headers, body, last_error, finished_at) "

bool
sw_enqueue(SwCache *cache, SwBlock *wh, const SwContext *ctx, HTAB *counts)
{
	static const Oid  argtypes[11] = {INT8OID, INT4OID, INT4OID,	  TEXTOID, INT8OID, TEXTOID,
									  TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID};
	Datum			  args[11];
	char			  nulls[11];
	SwRenderedRequest req;
	int64			  id = nextval_internal(cache->delivery_seq, false);
	char			 *error;

	memset(&req, 0, sizeof(req));
	error = sw_webhook_render(wh->tmpl, ctx, id, &req);

	memset(nulls, ' ', sizeof(nulls));
	args[0] = Int64GetDatum(id);
	args[1] = Int32GetDatum(wh->series->series_id);
	args[2] = Int32GetDatum(wh->block_id);
	args[3] = CStringGetTextDatum(ctx->user_id);
	args[4] = Int64GetDatum(ctx->event_id);
	args[5] = CStringGetTextDatum(error ? "failed" : "pending");
	args[6] = CStringGetTextDatum(req.method ? req.method : "");
	args[7] = CStringGetTextDatum(req.url ? req.url : "");
	args[8] = text_array(req.headers, req.headers ? req.nheaders : 0);
	args[9] = CStringGetTextDatum(req.body ? req.body : "");
	if (error)
		args[10] = CStringGetTextDatum(error);
	else
		nulls[10] = 'n';

	sw_plan(
		&enqueue_plan,
		"WITH reached AS (" REACH_SQL(
			"VALUES ($3, $4, now(), $5)") ") " DELIVERY_COLUMNS
										  "SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "
										  "       CASE WHEN $6 = 'failed' THEN now() END "
										  "  FROM reached",
		11, argtypes);
	if (sw_execute(enqueue_plan, args, nulls, false, 0, SPI_OK_INSERT) == 0)
		return false;

	if (error)
	{
		sw_counts_add(counts, wh->block_id, wh->series->series_id, 0, 0, 1);
		note_render_failure(wh->block_id, error);
	}
	else
		sw_wake_at_commit();
	return true;
}

bool
sw_reach(SwBlock *block, const SwContext *ctx)
{
	static const Oid argtypes[3] = {INT4OID, TEXTOID, INT8OID};
	Datum			 args[3];

	args[0] = Int32GetDatum(block->block_id);
	args[1] = CStringGetTextDatum(ctx->user_id);
	args[2] = Int64GetDatum(ctx->event_id);
	sw_plan(&reach_plan, REACH_SQL("VALUES ($1, $2, now(), $3)"), 3, argtypes);
	return sw_execute(reach_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING) == 1;
}

/* A user's first item in sw_reach_many. */
typedef struct FirstItem
{
	text *user_id; /* key */
	int	  index;
} FirstItem;

void
sw_reach_many(const SwReach *reach, int n, bool *reached)
{
	static const Oid argtypes[3] = {INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum			*cols[3];
	Datum			 args[3];
	HTAB			*first; /* user id -> index of the user's first item */
	uint64			 nrows;

	first = sw_text_map_create("seriesweb reached users", sizeof(FirstItem), CurrentMemoryContext);
	for (int c = 0; c < 3; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		text	  *id = cstring_to_text(reach[i].ctx->user_id);
		bool	   found;
		FirstItem *f = hash_search(first, &id, HASH_ENTER, &found);

		if (!found)
			f->index = i;
		Assert(!found || reach[i - 1].ctx == reach[i].ctx);
		cols[0][i] = Int32GetDatum(reach[i].block->block_id);
		cols[1][i] = PointerGetDatum(id);
		cols[2][i] = Int64GetDatum(reach[i].ctx->event_id);
		reached[i] = false;
	}
	args[0] = PointerGetDatum(construct_array(cols[0], n, INT4OID, 4, true, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(cols[1], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] =
		PointerGetDatum(construct_array(cols[2], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	sw_plan(&reach_many_plan,
			REACH_SQL("SELECT b, u, now(), e FROM unnest($1, $2, $3) AS r (b, u, e)"), 3, argtypes);
	nrows = sw_execute(reach_many_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	for (uint64 r = 0; r < nrows; r++)
	{
		HeapTuple  tup = SPI_tuptable->vals[r];
		TupleDesc  desc = SPI_tuptable->tupdesc;
		bool	   isnull;
		int32	   block_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		text	  *id = DatumGetTextPP(SPI_getbinval(tup, desc, 2, &isnull));
		FirstItem *f = hash_search(first, &id, HASH_FIND, NULL);

		for (int i = f->index; i < n && reach[i].ctx == reach[f->index].ctx; i++)
			if (reach[i].block->block_id == block_id)
				reached[i] = true;
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The delivery ids an enqueue statement inserted, in ascending order. */
static int
cmp_int64(const void *a, const void *b)
{
	int64 x = *(const int64 *) a;
	int64 y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

void
sw_enqueue_many(SwCache *cache, const SwReach *reach, int n, HTAB *counts)
{
	static const Oid argtypes[11] = {INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
									 INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
									 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	Datum			*cols[11];
	bool			*error_nulls = palloc(sizeof(bool) * n);
	char		   **errors = palloc(sizeof(char *) * n);
	int64			*ids = palloc(sizeof(int64) * n);
	int64			*queued;
	Datum			 args[11];
	int				 dims[1] = {n};
	int				 lbs[1] = {1};
	uint64			 nqueued;
	bool			 any_pending = false;
	Oid				 array_out_fn;
	bool			 varlena;

	getTypeOutputInfo(TEXTARRAYOID, &array_out_fn, &varlena);

	for (int c = 0; c < 11; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
	{
		SwBlock			 *wh = reach[i].block;
		SwContext		 *ctx = reach[i].ctx;
		SwRenderedRequest req;

		ctx->series_id = wh->series->series_id;
		ctx->series_name = wh->series->name;
		ctx->block_id = wh->block_id;
		ctx->block_title = wh->title;
		ids[i] = nextval_internal(cache->delivery_seq, false);
		memset(&req, 0, sizeof(req));
		errors[i] = sw_webhook_render(wh->tmpl, ctx, ids[i], &req);
		cols[0][i] = Int64GetDatum(ids[i]);
		cols[1][i] = Int32GetDatum(wh->series->series_id);
		cols[2][i] = Int32GetDatum(wh->block_id);
		cols[3][i] = CStringGetTextDatum(ctx->user_id);
		cols[4][i] = Int64GetDatum(ctx->event_id);
		cols[5][i] = CStringGetTextDatum(errors[i] ? "failed" : "pending");
		cols[6][i] = CStringGetTextDatum(req.method ? req.method : "");
		cols[7][i] = CStringGetTextDatum(req.url ? req.url : "");
		/* Headers of different lengths: each as an array literal. */
		cols[8][i] = CStringGetTextDatum(OidOutputFunctionCall(
			array_out_fn, text_array(req.headers, req.headers ? req.nheaders : 0)));
		cols[9][i] = CStringGetTextDatum(req.body ? req.body : "");
		cols[10][i] = errors[i] ? CStringGetTextDatum(errors[i]) : (Datum) 0;
		error_nulls[i] = errors[i] == NULL;
	}
	args[0] =
		PointerGetDatum(construct_array(cols[0], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(cols[1], n, INT4OID, 4, true, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(cols[2], n, INT4OID, 4, true, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(cols[3], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[4] =
		PointerGetDatum(construct_array(cols[4], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (int c = 5; c < 10; c++)
		args[c] = PointerGetDatum(construct_array(cols[c], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[10] = PointerGetDatum(
		construct_md_array(cols[10], error_nulls, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));

	/* Each (block, user) at most once in one call: the caller sees to it. */
	sw_plan(
		&enqueue_many_plan,
		"WITH d AS (SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
		"             AS d (id, series, block, usr, event, status, method, url, headers, "
		"                   body, error)), "
		"reached AS (" REACH_SQL(
			"SELECT block, usr, now(), event FROM d") ") " DELIVERY_COLUMNS
													  "SELECT d.id, d.series, d.block, d.usr, "
													  "d.event, d.status, d.method, d.url, "
													  "       d.headers::text[], d.body, d.error, "
													  "       CASE WHEN d.status = 'failed' THEN "
													  "now() END "
													  "  FROM d JOIN reached r ON r.block_id = "
													  "d.block AND r.user_id = d.usr "
													  "RETURNING delivery_id",
		11, argtypes);
	nqueued = sw_execute(enqueue_many_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	queued = palloc(sizeof(int64) * Max(nqueued, 1));
	for (uint64 i = 0; i < nqueued; i++)
	{
		bool isnull;

		queued[i] =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(queued, nqueued, sizeof(int64), cmp_int64);

	for (int i = 0; i < n; i++)
	{
		SwBlock *wh = reach[i].block;

		if (bsearch(&ids[i], queued, nqueued, sizeof(int64), cmp_int64) == NULL)
			continue;
		sw_counts_add(counts, wh->block_id, wh->series->series_id, 0, 1, errors[i] ? 1 : 0);
		if (errors[i])
			note_render_failure(wh->block_id, errors[i]);
		else
			any_pending = true;
	}
	if (any_pending)
		sw_wake_at_commit();
}
