/*-------------------------------------------------------------------------
 *
 * retry.c
 *	  The retry decision: what a finished attempt means for its delivery
 *	  (see retry.h).
 *
 * A 2xx answer sends the delivery.  Any other end of the request (another
 * status, or no answer) fails it when the receiver answered 410 Gone or this
 * was its last attempt (max_attempts); otherwise it is pending again, due after the delay seriesweb.retry_delays
 * gives this attempt, or after the wait a 429 or 503 answer's Retry-After
 * asks for, capped at the longest of those delays.  Up to 10% jitter is
 * added, so that the retries of one outage do not arrive as one wave.  The
 * worker records the outcome (queue.c) and looks for the retry when it is
 * due.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "response.h"
#include "retry.h"
#include "settings.h"
#include "utils/timestamp.h"

static double
random_fraction(void)
{
#if PG_VERSION_NUM >= 150000
	return pg_prng_double(&pg_global_prng_state);
#else
	return (double) random() / ((double) MAX_RANDOM_VALUE + 1);
#endif
}

/* The attempt as it happened, whatever it means for the delivery. */
static void
copy_attempt(const SwClaimed *c, const SwTransfer *t, SwOutcome *o)
{
	o->delivery_id = c->delivery_id;
	o->attempt = c->attempts + 1;
	o->started_at = t->started_at;
	o->duration_ms = t->duration_ms;
	o->finished_at = TimestampTzPlusMilliseconds(t->started_at, (int64) t->duration_ms);
	o->response_status = (int) t->status;
	o->error = t->error;
	o->summary = t->summary;
	o->response_body = t->response_body.len > 0 ? t->response_body.data : NULL;
}

void
sw_retry_decide(const SwClaimed *c, const SwTransfer *t, SwOutcome *o)
{
	long delay_ms;

	copy_attempt(c, t, o);
	if (t->error == NULL)
		o->status = "sent";
	else if (t->status == 410 || o->attempt >= c->max_attempts)
		o->status = "failed";
	else
	{
		o->status = "pending";
		delay_ms = sw_retry_delay_ms(o->attempt);
		if ((t->status == 429 || t->status == 503) && t->retry_after_s >= 0)
			delay_ms = sw_retry_after_delay_ms(t->retry_after_s, sw_longest_retry_delay_ms());
		/* Up to 10% jitter, so retries of one outage do not arrive as one wave. */
		delay_ms += (long) (random_fraction() * (delay_ms / 10));
		o->next_attempt_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), delay_ms);
	}
}
