/*-------------------------------------------------------------------------
 *
 * counters.h
 *	  The per-block counters behind the stats views, accumulated per
 *	  statement and flushed as deltas (see counters.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_COUNTERS_H
#define SERIESWEB_COUNTERS_H

#include "postgres.h"

#include "utils/hsearch.h"

extern HTAB *sw_counts_create(MemoryContext cxt);
extern void	 sw_counts_add(HTAB *counts, int32 block_id, int32 series_id, int entered, int reached,
						   int failed);
extern void	 sw_counts_flush(HTAB *counts);

#endif /* SERIESWEB_COUNTERS_H */
