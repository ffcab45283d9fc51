/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The delivery queue: enqueue in the event's transaction (matcher side),
 *	  claim and record in short worker transactions (worker side), and the
 *	  per-block counters behind the stats views.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_QUEUE_H
#define SERIESWEB_QUEUE_H

#include "postgres.h"

#include "series_cache.h"
#include "utils/hsearch.h"

/* ---- counters, accumulated per statement or batch, flushed as deltas ---- */

extern HTAB *sw_counts_create(MemoryContext cxt);
extern void	 sw_counts_add(HTAB *counts, int32 block_id, int32 series_id, int entered, int reached,
						   int failed);
extern void	 sw_counts_flush(HTAB *counts);

/* ---- matcher side ---- */

/*
 * The user reaches webhook block wh: record it in seriesweb.progress and
 * insert its rendered delivery, with one statement; inside SPI.  False (and
 * nothing inserted) if the user had reached the block already.
 */
extern bool sw_enqueue(SwCache *cache, SwBlock *wh, const SwContext *ctx, HTAB *counts);

/* A webhook block a user reaches, with the context of the event. */
typedef struct SwReach
{
	SwBlock	  *block;
	SwContext *ctx; /* its series and block fields are set here */
} SwReach;

/*
 * Record that the user reached a rule (seriesweb.progress), inside SPI;
 * false if they had reached it already.
 */
extern bool sw_reach(SwBlock *block, const SwContext *ctx);

/*
 * Record that users reached rules, with one statement; reached[i] says
 * whether reach[i] was reached now (not before).  Each (block, user) at most
 * once per call, and the items of a user next to each other.
 */
extern void sw_reach_many(const SwReach *reach, int n, bool *reached);

/*
 * sw_enqueue for many at once, with one statement: each (block, user) at
 * most once per call.  Counts the webhooks reached.
 */
extern void sw_enqueue_many(SwCache *cache, const SwReach *reach, int n, HTAB *counts);

/* ---- worker side ---- */

/* One claimed delivery, ready to send. */
typedef struct SwClaimed
{
	int64  delivery_id;
	int32  block_id;
	int	   attempts; /* made before this one */
	int	   max_attempts;
	char  *method;
	char  *url;
	int	   nheaders;
	char **headers; /* "Name: value" */
	char  *body;
	int	   body_len;
	char  *secret;	   /* the block's, NULL when unsigned */
	char  *webhook_id; /* stable across the delivery's attempts */
} SwClaimed;

/* The outcome of one attempt. */
typedef struct SwOutcome
{
	int64		delivery_id;
	int			attempt;		 /* number of this attempt, from 1 */
	const char *status;			 /* "sent", "failed" or "pending" (retry) */
	TimestampTz next_attempt_at; /* when status is "pending" */
	TimestampTz started_at;
	TimestampTz finished_at;
	double		duration_ms;
	int			response_status; /* 0: no response */
	char	   *error;			 /* NULL on success */
	char	   *summary;		 /* the error as viewers read it (block_stats) */
	char	   *response_body;	 /* capped; may be NULL */
} SwOutcome;

/*
 * Where the last claim stopped in the due order (next_attempt_at, then
 * delivery_id).  The next claim starts after it instead of stepping again
 * over the index entries of everything claimed since the last VACUUM.
 */
typedef struct SwClaimCursor
{
	TimestampTz at; /* DT_NOBEGIN: from the start */
	int64		id;
} SwClaimCursor;

/* Each of these runs its own short transaction. */
extern void		   sw_queue_recover(void);
extern int		   sw_queue_claim(int limit, SwClaimCursor *cursor, const char **skip, int nskip,
								  SwClaimed *out, MemoryContext cxt);
extern void		   sw_queue_record(SwOutcome *outcomes, int n);
extern void		   sw_queue_release(const int64 *ids, const int *delay_ms, int n);
extern void		   sw_queue_hurry(const int64 *ids, const int *attempts, int n);
extern TimestampTz sw_queue_next_due(void);
extern TimestampTz sw_queue_oldest_xact_start(void);
extern void		   sw_queue_fold_counts(void);
extern int64	   sw_queue_purge(int retention_s);

#endif /* SERIESWEB_QUEUE_H */
