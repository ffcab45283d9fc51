/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  The per-block counters behind the stats views, as the matcher counts
 *	  them: entered, reached, failed to render, waiting and not matched.
 *
 * A trigger call accumulates its counts per block in a hash table
 * (sw_counts_add, from matcher.c, event_batch.c and enqueue.c) and flushes
 * them once, at the end of the statement, as one delta row per block touched
 * (sw_counts_flush).  Counters are insert-only deltas
 * (seriesweb.block_counts) so that inserting transactions never queue behind
 * one another on a counter row; the worker adds the sent and failed counts
 * when it records outcomes, and folds the deltas into one row per block
 * (sw_queue_fold_counts, queue.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "counters.h"
#include "executor/spi.h"
#include "plans.h"
#include "utils/array.h"

typedef struct CountEntry
{
	int32 block_id; /* hash key */
	int32 series_id;
	int64 entered;
	int64 reached;
	int64 failed;
	int64 waiting;
	int64 not_matched;
} CountEntry;

HTAB *
sw_counts_create(MemoryContext cxt)
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(int32);
	ctl.entrysize = sizeof(CountEntry);
	ctl.hcxt = cxt;
	return hash_create("seriesweb counts", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static CountEntry *
count_entry(HTAB *counts, int32 block_id, int32 series_id)
{
	bool		found;
	CountEntry *e = hash_search(counts, &block_id, HASH_ENTER, &found);

	if (!found)
	{
		memset(e, 0, sizeof(*e));
		e->block_id = block_id;
		e->series_id = series_id;
	}
	return e;
}

void
sw_counts_add(HTAB *counts, int32 block_id, int32 series_id, int entered, int reached, int failed)
{
	CountEntry *e = count_entry(counts, block_id, series_id);

	e->entered += entered;
	e->reached += reached;
	e->failed += failed;
}

void
sw_counts_add_timed(HTAB *counts, int32 block_id, int32 series_id, int waiting, int not_matched)
{
	CountEntry *e = count_entry(counts, block_id, series_id);

	e->waiting += waiting;
	e->not_matched += not_matched;
}

static SPIPlanPtr counts_plan;
static SPIPlanPtr timed_counts_plan;

/*
 * Without timed deltas, the columns of 0.1: a database whose update is
 * pending has no others.
 */
/* clang-format off */
static const char counts_sql[] =
	"INSERT INTO seriesweb.block_counts (block_id, series_id, entered, reached, failed) "
	"SELECT * FROM unnest($1, $2, $3, $4, $5)";

static const char timed_counts_sql[] =
	"INSERT INTO seriesweb.block_counts "
	"       (block_id, series_id, entered, reached, failed, waiting, not_matched) "
	"SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7)";
/* clang-format on */

#define NCOLS 7

/* The deltas as arrays, one column each; true if some are timed. */
static bool
count_columns(HTAB *counts, long n, Datum *args)
{
	Datum		   *cols[NCOLS];
	HASH_SEQ_STATUS seq;
	CountEntry	   *e;
	int				i = 0;
	bool			timed = false;

	for (int c = 0; c < NCOLS; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	hash_seq_init(&seq, counts);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		cols[0][i] = Int32GetDatum(e->block_id);
		cols[1][i] = Int32GetDatum(e->series_id);
		cols[2][i] = Int64GetDatum(e->entered);
		cols[3][i] = Int64GetDatum(e->reached);
		cols[4][i] = Int64GetDatum(e->failed);
		cols[5][i] = Int64GetDatum(e->waiting);
		cols[6][i] = Int64GetDatum(e->not_matched);
		timed |= e->waiting != 0 || e->not_matched != 0;
		i++;
	}
	for (int c = 0; c < 2; c++)
		args[c] = PointerGetDatum(construct_array(cols[c], n, INT4OID, 4, true, TYPALIGN_INT));
	for (int c = 2; c < NCOLS; c++)
		args[c] = PointerGetDatum(
			construct_array(cols[c], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	return timed;
}

/* Insert one delta row per block touched; inside SPI. */
void
sw_counts_flush(HTAB *counts)
{
	static const Oid argtypes[NCOLS] = {INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
										INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
	long			 n = hash_get_num_entries(counts);
	Datum			 args[NCOLS];

	if (n == 0)
		return;
	if (count_columns(counts, n, args))
	{
		sw_plan(&timed_counts_plan, timed_counts_sql, NCOLS, argtypes);
		sw_execute(timed_counts_plan, args, NULL, false, 0, SPI_OK_INSERT);
	}
	else
	{
		sw_plan(&counts_plan, counts_sql, 5, argtypes);
		sw_execute(counts_plan, args, NULL, false, 0, SPI_OK_INSERT);
	}
}
