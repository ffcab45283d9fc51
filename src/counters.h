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
/* Users who start or end waiting on a wait or timed rule, or take its not-matched path. */
extern void sw_counts_add_timed(HTAB *counts, int32 block_id, int32 series_id, int waiting,
								int not_matched);
extern void sw_counts_flush(HTAB *counts);

#endif /* SERIESWEB_COUNTERS_H */
