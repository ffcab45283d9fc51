/*-------------------------------------------------------------------------
 *
 * counters.c
 *	  The per-block counters behind the stats views, as the matcher counts
 *	  them: entered, reached, and failed to render.
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

void
sw_counts_add(HTAB *counts, int32 block_id, int32 series_id, int entered, int reached, int failed)
{
	bool		found;
	CountEntry *e = hash_search(counts, &block_id, HASH_ENTER, &found);

	if (!found)
	{
		e->series_id = series_id;
		e->entered = e->reached = e->failed = 0;
	}
	e->entered += entered;
	e->reached += reached;
	e->failed += failed;
}

static SPIPlanPtr counts_plan;

/* clang-format off */
static const char counts_sql[] =
	"INSERT INTO seriesweb.block_counts (block_id, series_id, entered, reached, failed) "
	"SELECT * FROM unnest($1, $2, $3, $4, $5)";
/* clang-format on */

/* Insert one delta row per block touched; inside SPI. */
void
sw_counts_flush(HTAB *counts)
{
	static const Oid argtypes[5] = {INT4ARRAYOID, INT4ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
									INT8ARRAYOID};
	long			 n = hash_get_num_entries(counts);
	Datum			*cols[5];
	Datum			 args[5];
	HASH_SEQ_STATUS	 seq;
	CountEntry		*e;
	int				 i = 0;

	if (n == 0)
		return;
	for (int c = 0; c < 5; c++)
		cols[c] = palloc(sizeof(Datum) * n);
	hash_seq_init(&seq, counts);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		cols[0][i] = Int32GetDatum(e->block_id);
		cols[1][i] = Int32GetDatum(e->series_id);
		cols[2][i] = Int64GetDatum(e->entered);
		cols[3][i] = Int64GetDatum(e->reached);
		cols[4][i] = Int64GetDatum(e->failed);
		i++;
	}
	args[0] = PointerGetDatum(construct_array(cols[0], n, INT4OID, 4, true, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(cols[1], n, INT4OID, 4, true, TYPALIGN_INT));
	for (int c = 2; c < 5; c++)
		args[c] = PointerGetDatum(
			construct_array(cols[c], n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	sw_plan(&counts_plan, counts_sql, 5, argtypes);
	sw_execute(counts_plan, args, NULL, false, 0, SPI_OK_INSERT);
}
