/*-------------------------------------------------------------------------
 *
 * queue.h
 *	  The worker's side of the delivery queue: claim, record, hand back,
 *	  recover and purge deliveries, each in a short transaction of its own
 *	  (see queue.c; the matcher's side is enqueue.h).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_QUEUE_H
#define SERIESWEB_QUEUE_H

#include "postgres.h"

#include "datatype/timestamp.h"

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
/*
 * A short transaction of the worker's, with SPI connected and a snapshot
 * (the other steps here, and the release of timers, run in one each).
 */
extern void sw_worker_tx_begin(const char *activity);
extern void sw_worker_tx_commit(void);

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
