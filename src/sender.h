/*-------------------------------------------------------------------------
 *
 * sender.h
 *	  HTTP requests with the libcurl multi interface: many in flight at once,
 *	  connections kept alive between requests, each request bounded by
 *	  seriesweb.timeout, no redirects, http and https only.  Used by the
 *	  worker for deliveries and by test_webhook() for one request.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SENDER_H
#define SERIESWEB_SENDER_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "guard.h"
#include "lib/ilist.h"
#include "lib/stringinfo.h"

typedef struct SwSender SwSender;

/* Sent unless the block sets its own User-Agent. */
#define SW_USER_AGENT "seriesweb/" SERIESWEB_VERSION

/*
 * One request and its result.  The caller pallocs it (results are allocated
 * in its memory context) and keeps it, and every string it points to, alive
 * until it is handed back as done.
 */
typedef struct SwTransfer
{
	/* request */
	const char *method;
	const char *url;
	char	  **headers; /* "Name: value" */
	int			nheaders;
	const char *body;
	int			body_len;
	bool		keep_headers; /* collect response headers (test_webhook) */
	void	   *owner;		  /* for the caller */

	/* result, set when done */
	long		   status;			 /* HTTP status, 0 if no response */
	char		  *error;			 /* NULL when a 2xx answer came */
	char		  *summary;			 /* error without URL, address or header values */
	int			   retry_after_s;	 /* Retry-After in seconds, -1 if absent */
	StringInfoData response_body;	 /* valid text, at most body_limit bytes */
	StringInfoData response_headers; /* "Name: value\r\n" lines if kept, valid text */
	TimestampTz	   started_at;
	double		   duration_ms;

	/* sender's own */
	void			  *easy;
	struct curl_slist *slist;
	char			  *errbuf;
	SwRefusal		   refusal;			 /* why sockets.c opened no connection */
	int				   body_limit;		 /* seriesweb.response_body_limit at the start */
	int64			   stalled_at_start; /* the sender's stalled_us when it started */
	dlist_node		   in_flight_node;	 /* in the sender's list, oldest first */
} SwTransfer;

typedef void (*SwDoneCallback)(SwTransfer *t, void *arg);

extern SwSender *sw_sender_create(void);
extern void		 sw_sender_destroy(SwSender *s);

/* Apply reloaded settings (connection cache size). */
extern void sw_sender_configure(SwSender *s);

/* Stop reusing open connections (the allowed networks changed). */
extern void sw_sender_forget_connections(SwSender *s);

/* Start a request; a request that cannot even start is done at once. */
extern void sw_sender_start(SwSender *s, SwTransfer *t, SwDoneCallback done, void *arg);

/* Stop a request that is not done (on error or cancel); its result is unset. */
extern void sw_sender_abort(SwSender *s, SwTransfer *t);

/* Requests started and not yet done. */
extern int sw_sender_in_flight(SwSender *s);

/*
 * Move requests forward, waiting at most timeout_ms for network activity,
 * and call done for each finished one, including those that ran out of
 * seriesweb.timeout.  Returns how many finished.  The timeout counts only
 * the time the caller let the sender run: a stall between two calls (a
 * lock, a slow fsync, a stopped process) is not charged to the requests
 * in flight, whose answers are read when it ends.
 */
extern int sw_sender_run(SwSender *s, int timeout_ms, SwDoneCallback done, void *arg);

#endif /* SERIESWEB_SENDER_H */
