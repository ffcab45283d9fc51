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
 * once, with one statement each (event_batch.c).  An event of a watched
 * table has no event id (0 in the context): its rows store NULL.  The
 * worker's side of the queue is queue.c.
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
#include "text_hash.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "wake.h"

/*
 * Record that a user reached a block, unless they had: rows from values,
 * returning those reached now.  Written once for the four statements that
 * reach blocks; the two that enqueue also share the deliveries' columns.
 */
/* clang-format off */
#define REACH_SQL(values) \
	"INSERT INTO seriesweb.progress AS p (block_id, user_id, reached_at, event_id) " \
	values \
	" ON CONFLICT (block_id, user_id) DO UPDATE " \
	"    SET reached_at = EXCLUDED.reached_at, event_id = EXCLUDED.event_id " \
	"  WHERE p.reached_at IS NULL RETURNING block_id, user_id"

#define DELIVERY_COLUMNS \
	"INSERT INTO seriesweb.deliveries (delivery_id, series_id, block_id, user_id, event_id, " \
	"       status, method, url, headers, body, last_error, finished_at) "
/* clang-format on */

static Datum
text_array(char **items, int n)
{
	Datum *d = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(items[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * A webhook that could not be rendered: its delivery is stored failed by the
 * enqueue statement, and the reason becomes the block's latest error.
 */
static SPIPlanPtr render_failed_plan;

/* clang-format off */
static const char render_failed_sql[] =
	"INSERT INTO seriesweb.block_activity AS a (block_id, last_failed_at, last_error) "
	"VALUES ($1, now(), $2) ON CONFLICT (block_id) DO UPDATE "
	"   SET last_failed_at = EXCLUDED.last_failed_at, last_error = EXCLUDED.last_error";
/* clang-format on */

static void
note_render_failure(int32 block_id, const char *error)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 args[2];

	args[0] = Int32GetDatum(block_id);
	args[1] = CStringGetTextDatum(error);
	sw_plan(&render_failed_plan, render_failed_sql, 2, argtypes);
	sw_execute(render_failed_plan, args, NULL, false, 0, SPI_OK_INSERT);
}

/* ------------------------------------------------------------------------
 * One user, one block
 * ------------------------------------------------------------------------
 */

static SPIPlanPtr enqueue_plan;

/* clang-format off */
static const char enqueue_sql[] =
	"WITH reached AS ("
		REACH_SQL("VALUES ($3, $4, now(), NULLIF($5, 0))")
	") "
	DELIVERY_COLUMNS
	"SELECT $1, $2, $3, $4, NULLIF($5, 0), $6, $7, $8, $9, $10, $11, "
	"       CASE WHEN $6 = 'failed' THEN now() END "
	"  FROM reached";
/* clang-format on */

/* The arguments of enqueue_sql: delivery id, then the delivery's columns. */
static void
enqueue_args(Datum *args, char *nulls, const SwBlock *wh, const SwContext *ctx, int64 id,
			 const SwRenderedRequest *req, const char *error)
{
	memset(nulls, ' ', 11);
	args[0] = Int64GetDatum(id);
	args[1] = Int32GetDatum(wh->series->series_id);
	args[2] = Int32GetDatum(wh->block_id);
	args[3] = CStringGetTextDatum(ctx->user_id);
	args[4] = Int64GetDatum(ctx->event_id);
	args[5] = CStringGetTextDatum(error ? "failed" : "pending");
	args[6] = CStringGetTextDatum(req->method ? req->method : "");
	args[7] = CStringGetTextDatum(req->url ? req->url : "");
	args[8] = text_array(req->headers, req->headers ? req->nheaders : 0);
	args[9] = CStringGetTextDatum(req->body ? req->body : "");
	if (error)
		args[10] = CStringGetTextDatum(error);
	else
		nulls[10] = 'n';
}

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
	enqueue_args(args, nulls, wh, ctx, id, &req, error);

	sw_plan(&enqueue_plan, enqueue_sql, 11, argtypes);
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

static SPIPlanPtr reach_plan;

/* clang-format off */
static const char reach_sql[] =
	REACH_SQL("VALUES ($1, $2, now(), NULLIF($3, 0))");
/* clang-format on */

bool
sw_reach(SwBlock *block, const SwContext *ctx)
{
	static const Oid argtypes[3] = {INT4OID, TEXTOID, INT8OID};
	Datum			 args[3];

	args[0] = Int32GetDatum(block->block_id);
	args[1] = CStringGetTextDatum(ctx->user_id);
	args[2] = Int64GetDatum(ctx->event_id);
	sw_plan(&reach_plan, reach_sql, 3, argtypes);
	return sw_execute(reach_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING) == 1;
}

/* ------------------------------------------------------------------------
 * Many users at once (event_batch.c)
 * ------------------------------------------------------------------------
 */

static SPIPlanPtr reach_many_plan;

/* clang-format off */
static const char reach_many_sql[] =
	REACH_SQL("SELECT b, u, now(), NULLIF(e, 0) FROM unnest($1, $2, $3) AS r (b, u, e)");
/* clang-format on */

/* A user's first item in sw_reach_many. */
typedef struct FirstItem
{
	text *user_id; /* key */
	int	  index;
} FirstItem;

/*
 * The arguments of reach_many_sql (block, user and event arrays), with
 * reached[] all false; returns the index of each user's first item.
 */
static HTAB *
reach_many_args(const SwReach *reach, int n, bool *reached, Datum *args)
{
	HTAB  *first; /* user id -> index of the user's first item */
	Datum *cols[3];

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
	return first;
}

/* Set reached[i] for each (block, user) of the nrows rows returned. */
static void
mark_reached_now(HTAB *first, const SwReach *reach, int n, uint64 nrows, bool *reached)
{
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
}

void
sw_reach_many(const SwReach *reach, int n, bool *reached)
{
	static const Oid argtypes[3] = {INT4ARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
	Datum			 args[3];
	HTAB			*first = reach_many_args(reach, n, reached, args);
	uint64			 nrows;

	sw_plan(&reach_many_plan, reach_many_sql, 3, argtypes);
	nrows = sw_execute(reach_many_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	mark_reached_now(first, reach, n, nrows, reached);
	SPI_freetuptable(SPI_tuptable);
}

static SPIPlanPtr enqueue_many_plan;

/* Each (block, user) at most once in one call: the caller sees to it. */
/* clang-format off */
static const char enqueue_many_sql[] =
	"WITH d AS (SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
	"             AS d (id, series, block, usr, event, status, method, url, headers, "
	"                   body, error)), "
	"reached AS ("
		REACH_SQL("SELECT block, usr, now(), NULLIF(event, 0) FROM d")
	") "
	DELIVERY_COLUMNS
	"SELECT d.id, d.series, d.block, d.usr, NULLIF(d.event, 0), d.status, d.method, d.url, "
	"       d.headers::text[], d.body, d.error, "
	"       CASE WHEN d.status = 'failed' THEN now() END "
	"  FROM d JOIN reached r ON r.block_id = d.block AND r.user_id = d.usr "
	"RETURNING delivery_id";
/* clang-format on */

/* The rows sw_enqueue_many inserts, column by column, as rendered. */
typedef struct EnqueueRows
{
	Datum *cols[11];	/* the columns of enqueue_many_sql's unnest */
	bool  *error_nulls; /* of the last column */
	char **errors;		/* why each could not be rendered; NULL if it was */
	int64 *ids;			/* each row's delivery id */
} EnqueueRows;

/* Render row i, for the webhook and event of reach. */
static void
render_enqueue_row(EnqueueRows *rows, int i, SwCache *cache, const SwReach *reach, Oid array_out_fn)
{
	SwBlock			 *wh = reach->block;
	SwContext		 *ctx = reach->ctx;
	Datum			**cols = rows->cols;
	SwRenderedRequest req;

	ctx->series_id = wh->series->series_id;
	ctx->series_name = wh->series->name;
	ctx->block_id = wh->block_id;
	ctx->block_title = wh->title;
	rows->ids[i] = nextval_internal(cache->delivery_seq, false);
	memset(&req, 0, sizeof(req));
	rows->errors[i] = sw_webhook_render(wh->tmpl, ctx, rows->ids[i], &req);
	cols[0][i] = Int64GetDatum(rows->ids[i]);
	cols[1][i] = Int32GetDatum(wh->series->series_id);
	cols[2][i] = Int32GetDatum(wh->block_id);
	cols[3][i] = CStringGetTextDatum(ctx->user_id);
	cols[4][i] = Int64GetDatum(ctx->event_id);
	cols[5][i] = CStringGetTextDatum(rows->errors[i] ? "failed" : "pending");
	cols[6][i] = CStringGetTextDatum(req.method ? req.method : "");
	cols[7][i] = CStringGetTextDatum(req.url ? req.url : "");
	/* Headers of different lengths: each as an array literal. */
	cols[8][i] = CStringGetTextDatum(OidOutputFunctionCall(
		array_out_fn, text_array(req.headers, req.headers ? req.nheaders : 0)));
	cols[9][i] = CStringGetTextDatum(req.body ? req.body : "");
	cols[10][i] = rows->errors[i] ? CStringGetTextDatum(rows->errors[i]) : (Datum) 0;
	rows->error_nulls[i] = rows->errors[i] == NULL;
}

/* The arguments of enqueue_many_sql: the n rows' columns as arrays. */
static void
enqueue_many_args(const EnqueueRows *rows, int n, Datum *args)
{
	Datum *const *cols = rows->cols;
	int			  dims[1] = {n};
	int			  lbs[1] = {1};

	args[0] =
		PointerGetDatum(construct_array(cols[0], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	args[1] = PointerGetDatum(construct_array(cols[1], n, INT4OID, 4, true, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(cols[2], n, INT4OID, 4, true, TYPALIGN_INT));
	args[3] = PointerGetDatum(construct_array(cols[3], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[4] =
		PointerGetDatum(construct_array(cols[4], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	for (int c = 5; c < 10; c++)
		args[c] = PointerGetDatum(construct_array(cols[c], n, TEXTOID, -1, false, TYPALIGN_INT));
	args[10] = PointerGetDatum(construct_md_array(cols[10], rows->error_nulls, 1, dims, lbs,
												  TEXTOID, -1, false, TYPALIGN_INT));
}

static int
cmp_int64(const void *a, const void *b)
{
	int64 x = *(const int64 *) a;
	int64 y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/* The delivery ids the enqueue statement inserted, in ascending order. */
static int64 *
sorted_queued_ids(uint64 nqueued)
{
	int64 *queued = palloc(sizeof(int64) * Max(nqueued, 1));

	for (uint64 i = 0; i < nqueued; i++)
	{
		bool isnull;

		queued[i] =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(queued, nqueued, sizeof(int64), cmp_int64);
	return queued;
}

/*
 * Count the rows queued (those whose user had not reached the webhook) and
 * note the blocks of those that failed to render; true if any is pending.
 */
static bool
count_queued(const EnqueueRows *rows, const SwReach *reach, int n, const int64 *queued,
			 uint64 nqueued, HTAB *counts)
{
	bool any_pending = false;

	for (int i = 0; i < n; i++)
	{
		SwBlock *wh = reach[i].block;
		char	*error = rows->errors[i];

		if (bsearch(&rows->ids[i], queued, nqueued, sizeof(int64), cmp_int64) == NULL)
			continue;
		sw_counts_add(counts, wh->block_id, wh->series->series_id, 0, 1, error ? 1 : 0);
		if (error)
			note_render_failure(wh->block_id, error);
		else
			any_pending = true;
	}
	return any_pending;
}

void
sw_enqueue_many(SwCache *cache, const SwReach *reach, int n, HTAB *counts)
{
	static const Oid argtypes[11] = {INT8ARRAYOID, INT4ARRAYOID, INT4ARRAYOID, TEXTARRAYOID,
									 INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
									 TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID};
	EnqueueRows		 rows;
	Datum			 args[11];
	int64			*queued;
	uint64			 nqueued;
	Oid				 array_out_fn;
	bool			 varlena;

	rows.error_nulls = palloc(sizeof(bool) * n);
	rows.errors = palloc(sizeof(char *) * n);
	rows.ids = palloc(sizeof(int64) * n);
	getTypeOutputInfo(TEXTARRAYOID, &array_out_fn, &varlena);
	for (int c = 0; c < 11; c++)
		rows.cols[c] = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		render_enqueue_row(&rows, i, cache, &reach[i], array_out_fn);
	enqueue_many_args(&rows, n, args);

	sw_plan(&enqueue_many_plan, enqueue_many_sql, 11, argtypes);
	nqueued = sw_execute(enqueue_many_plan, args, NULL, false, 0, SPI_OK_INSERT_RETURNING);
	queued = sorted_queued_ids(nqueued);
	if (count_queued(&rows, reach, n, queued, nqueued, counts))
		sw_wake_at_commit();
}
