/*-------------------------------------------------------------------------
 *
 * sender.c
 *	  The libcurl multi wrapper behind every webhook request.
 *
 * One multi handle per process keeps the connection cache, so requests to
 * the same receiver reuse kept-alive connections.  Easy handles are pooled
 * and reset between requests.  The loop is curl_multi_perform +
 * curl_multi_poll (measured faster than socket_action + epoll for this
 * workload); the caller bounds the wait so it can look at its latch.
 *
 * Every request: the block's method, URL (its path as written, dot
 * segments included), headers and body; User-Agent seriesweb/<version>
 * unless the block sets one; no Expect: 100-continue; no proxy from the
 * environment; http and https only; redirects not followed; the whole
 * attempt bounded by seriesweb.timeout; header values sent exactly as
 * rendered.  What is kept of the answer (at most
 * seriesweb.response_body_limit bytes of body, as valid text) is
 * response.c's job: the callbacks here only hand it the bytes.
 * libcurl callbacks never ereport: errors become the transfer's error text.
 *
 * The timeout is the sender's, not curl's: curl's clocks are wall clocks,
 * and curl looks at them before it reads what arrived, so an answer that
 * came while the caller was not running the sender (the worker waiting for
 * a lock or an fsync, or not scheduled) would be thrown away as a timeout.
 * The sender charges a request only the time it was given to run: a gap of
 * more than STALL_MS beyond the wait the caller asked for is a stall, and
 * is left out.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>
#include <strings.h>

#include "mb/pg_wchar.h"
#include "response.h"
#include "sender.h"
#include "settings.h"
#include "sockets.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

struct SwSender
{
	CURLM	   *multi;
	int			in_flight;
	dlist_head	transfers;			/* in flight, oldest first */
	bool		forget_connections; /* new connections only, until idle */
	int			npool;
	CURL	   *pool[64];	/* reset easy handles, ready for reuse */
	TimestampTz last_look;	/* when curl last ran or a request started */
	int64		stalled_us; /* time since creation not charged to requests */
};

/* A gap this much longer than the caller's wait is a stall (see above). */
#define STALL_MS 100

static bool curl_initialised = false;

/* ereport on a failed setup call; these fail only on bugs or no memory. */
#define EASY_SETOPT(easy, opt, val) check_easy(curl_easy_setopt((easy), (opt), (val)), #opt)
#define MULTI_SETOPT(multi, opt, val) check_multi(curl_multi_setopt((multi), (opt), (val)), #opt)

static void
check_easy(CURLcode code, const char *what)
{
	if (code != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("seriesweb: libcurl refused %s: %s", what, curl_easy_strerror(code))));
}

static void
check_multi(CURLMcode code, const char *what)
{
	if (code != CURLM_OK)
		ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
						errmsg("seriesweb: libcurl multi failed in %s: %s", what,
							   curl_multi_strerror(code))));
}

static void
drop_connections_if_idle(SwSender *s)
{
	if (!s->forget_connections || s->in_flight > 0)
		return;
	curl_multi_cleanup(s->multi);
	s->multi = curl_multi_init();
	if (s->multi == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("seriesweb: could not create a libcurl multi handle")));
	sw_sender_configure(s);
	s->forget_connections = false;
}

SwSender *
sw_sender_create(void)
{
	SwSender *s;

	if (!curl_initialised)
	{
		CURLcode code = curl_global_init(CURL_GLOBAL_ALL);

		if (code != CURLE_OK)
			ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
							errmsg("seriesweb: could not initialise libcurl: %s",
								   curl_easy_strerror(code))));
		curl_initialised = true;
	}
	s = palloc0(sizeof(SwSender));
	dlist_init(&s->transfers);
	s->multi = curl_multi_init();
	if (s->multi == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("seriesweb: could not create a libcurl multi handle")));
	sw_sender_configure(s);
	return s;
}

void
sw_sender_configure(SwSender *s)
{
	/* Keep as many idle connections as may be busy at once. */
	MULTI_SETOPT(s->multi, CURLMOPT_MAXCONNECTS, (long) sw_max_concurrency);
}

/*
 * Kept-alive connections were checked by the guard when opened: after the
 * allowed networks change, stop reusing them.  Requests in flight finish on
 * theirs; new ones open fresh connections until the sender is idle, when
 * the whole connection cache is dropped.
 */
void
sw_sender_forget_connections(SwSender *s)
{
	s->forget_connections = true;
	drop_connections_if_idle(s);
}

void
sw_sender_destroy(SwSender *s)
{
	for (int i = 0; i < s->npool; i++)
		curl_easy_cleanup(s->pool[i]);
	curl_multi_cleanup(s->multi);
	pfree(s);
}

int
sw_sender_in_flight(SwSender *s)
{
	return s->in_flight;
}

/* ---- libcurl callbacks: never ereport from here ---- */

static size_t
receive_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	sw_response_body(userdata, data, size * nmemb);
	return size * nmemb;
}

static size_t
receive_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	sw_response_header(userdata, data, size * nmemb);
	return size * nmemb;
}

/* ---- starting and finishing requests ---- */

static CURL *
take_pooled_easy(SwSender *s)
{
	CURL *easy;

	if (s->npool > 0)
		return s->pool[--s->npool];
	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("seriesweb: could not create a libcurl handle")));
	return easy;
}

static void
return_easy_to_pool(SwSender *s, CURL *easy)
{
	if (s->npool < lengthof(s->pool))
	{
		curl_easy_reset(easy);
		s->pool[s->npool++] = easy;
	}
	else
		curl_easy_cleanup(easy);
}

/*
 * A "Name: value" line in the form that makes libcurl send it as it is.
 * curl reads a line with nothing but blanks after the colon as "remove this
 * header", and "Name;" as "send Name with an empty value": an empty value
 * takes the second form.  Any other line is passed unchanged, whatever its
 * value ends with (a value ending in ':' or ';' is still the value).
 */
static const char *
curl_header_line(const char *line)
{
	const char *colon = strchr(line, ':');
	const char *value;

	if (colon == NULL)
		return line;
	/* The blanks curl skips (ISSPACE; CR and LF never reach here). */
	for (value = colon + 1; *value != '\0' && strchr(" \t\v\f", *value) != NULL; value++)
		;
	if (*value != '\0')
		return line;
	return psprintf("%.*s;", (int) (colon - line), line);
}

static struct curl_slist *
request_headers(const SwTransfer *t)
{
	struct curl_slist *list = NULL;
	bool			   has_agent = false;

	for (int i = 0; i < t->nheaders; i++)
	{
		list = curl_slist_append(list, curl_header_line(t->headers[i]));
		has_agent |= strncasecmp(t->headers[i], "User-Agent:", 11) == 0;
	}
	if (!has_agent)
		list = curl_slist_append(list, "User-Agent: " SW_USER_AGENT);
	/* Send the body at once; receivers rarely answer 100-continue well. */
	list = curl_slist_append(list, "Expect:");
	return list;
}

static void
configure_easy(SwSender *s, CURL *easy, SwTransfer *t)
{
	EASY_SETOPT(easy, CURLOPT_PRIVATE, t);
	EASY_SETOPT(easy, CURLOPT_URL, t->url);
	/*
	 * Send the path the block wrote: libcurl would remove its "." and ".."
	 * segments, sending /a/../b to /b (values never make one: render_internal.h).
	 */
	EASY_SETOPT(easy, CURLOPT_PATH_AS_IS, 1L);
	EASY_SETOPT(easy, CURLOPT_CUSTOMREQUEST, t->method);
	EASY_SETOPT(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) t->body_len);
	EASY_SETOPT(easy, CURLOPT_POSTFIELDS, t->body);
	EASY_SETOPT(easy, CURLOPT_HTTPHEADER, t->slist);
	/* No overall timeout of curl's (see the top); connecting is part of ours. */
	EASY_SETOPT(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) INT_MAX);
	EASY_SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
	EASY_SETOPT(easy, CURLOPT_FOLLOWLOCATION, 0L);
	EASY_SETOPT(easy, CURLOPT_PROXY, "");
#if LIBCURL_VERSION_NUM >= 0x075500
	EASY_SETOPT(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	EASY_SETOPT(easy, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	EASY_SETOPT(easy, CURLOPT_ERRORBUFFER, t->errbuf);
	EASY_SETOPT(easy, CURLOPT_WRITEFUNCTION, receive_body);
	EASY_SETOPT(easy, CURLOPT_WRITEDATA, t);
	EASY_SETOPT(easy, CURLOPT_HEADERFUNCTION, receive_header);
	EASY_SETOPT(easy, CURLOPT_HEADERDATA, t);
	/* Every connection, after DNS resolution: the SSRF check (sockets.c). */
	t->refusal.error[0] = t->refusal.summary[0] = '\0';
	EASY_SETOPT(easy, CURLOPT_OPENSOCKETFUNCTION, sw_open_guarded_socket);
	EASY_SETOPT(easy, CURLOPT_OPENSOCKETDATA, &t->refusal);
	EASY_SETOPT(easy, CURLOPT_CLOSESOCKETFUNCTION, sw_close_guarded_socket);
	EASY_SETOPT(easy, CURLOPT_FRESH_CONNECT, (long) s->forget_connections);
}

/* A redirect is not followed: the error names where it led, the summary does not. */
static void
describe_redirect(SwTransfer *t)
{
	char *location = NULL;

	curl_easy_getinfo(t->easy, CURLINFO_REDIRECT_URL, &location);
	t->summary = psprintf("HTTP %ld: redirects are not followed", t->status);
	t->error = location ? psprintf("HTTP %ld: redirect to %s not followed", t->status, location)
						: t->summary;
}

/* Fill in the result of a finished transfer from curl's code and info. */
static void
set_result(SwTransfer *t, CURLcode code)
{
	CURL	  *easy = t->easy;
	curl_off_t total_us = 0;

	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->status);
	if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &total_us) == CURLE_OK)
		t->duration_ms = total_us / 1000.0;

	/*
	 * The error is for authors (deliveries, attempts, test_webhook); its
	 * summary, for the statistics viewers read, names no URL, host or
	 * address: curl's own messages and a redirect's Location may.
	 */
	if (code == CURLE_OPERATION_TIMEDOUT)
		t->error = psprintf("timed out after %d ms (seriesweb.timeout)", sw_timeout_ms);
	else if (code != CURLE_OK && t->refusal.error[0] != '\0')
	{
		t->error = pstrdup(t->refusal.error);
		t->summary = pstrdup(t->refusal.summary);
	}
	else if (code != CURLE_OK)
	{
		t->error = psprintf("%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
		t->summary = pstrdup(curl_easy_strerror(code));
	}
	else if (t->status >= 300 && t->status < 400)
		describe_redirect(t);
	else if (t->status < 200 || t->status >= 300)
		t->error = psprintf("HTTP %ld", t->status);
	/* A Location, or curl's words about what the receiver sent, is its data. */
	if (t->error)
		t->error = sw_valid_text(t->error, strlen(t->error), INT_MAX, GetDatabaseEncoding());
	if (t->summary == NULL)
		t->summary = t->error;
}

static void
finish_transfer(SwSender *s, SwTransfer *t, CURLcode code, SwDoneCallback done, void *arg)
{
	/* Results live with the transfer, whatever context is current now. */
	MemoryContext old = MemoryContextSwitchTo(GetMemoryChunkContext(t));

	set_result(t, code);
	sw_response_finish(t);
	MemoryContextSwitchTo(old);
	/* Given up by the sender: curl's clock stopped when it last ran it. */
	if (code == CURLE_OPERATION_TIMEDOUT)
		t->duration_ms = (GetCurrentTimestamp() - t->started_at) / 1000.0;
	dlist_delete(&t->in_flight_node);
	curl_multi_remove_handle(s->multi, t->easy);
	return_easy_to_pool(s, t->easy);
	t->easy = NULL;
	curl_slist_free_all(t->slist);
	t->slist = NULL;
	s->in_flight--;
	done(t, arg);
}

/*
 * Curl runs, or a request starts, at now, after waiting waited_ms for the
 * network: whatever the gap since the last look took beyond that (and
 * STALL_MS) was a stall.  A start counts as a look so that the gap before
 * it, which the new request did not live through, is settled first.
 */
static void
account_stall(SwSender *s, TimestampTz now, int waited_ms)
{
	int64 allowed_us = ((int64) waited_ms + STALL_MS) * 1000;

	if (s->last_look != 0 && now - s->last_look > allowed_us)
		s->stalled_us += now - s->last_look - allowed_us;
	s->last_look = now;
}

/* The time a request in flight has had to run, stalls left out. */
static int64
charged_us(const SwSender *s, const SwTransfer *t, TimestampTz now)
{
	return now - t->started_at - (s->stalled_us - t->stalled_at_start);
}

void
sw_sender_start(SwSender *s, SwTransfer *t, SwDoneCallback done, void *arg)
{
	CURLMcode mc;

	t->status = 0;
	t->error = t->summary = NULL;
	t->duration_ms = 0;
	t->started_at = GetCurrentTimestamp();
	account_stall(s, t->started_at, 0);
	t->stalled_at_start = s->stalled_us;
	sw_response_begin(t);
	t->errbuf = palloc0(CURL_ERROR_SIZE);
	t->easy = take_pooled_easy(s);
	t->slist = request_headers(t);
	configure_easy(s, t->easy, t);

	mc = curl_multi_add_handle(s->multi, t->easy);
	s->in_flight++;
	dlist_push_tail(&s->transfers, &t->in_flight_node);
	if (mc != CURLM_OK)
	{
		snprintf(t->errbuf, CURL_ERROR_SIZE, "could not start the request: %s",
				 curl_multi_strerror(mc));
		finish_transfer(s, t, CURLE_FAILED_INIT, done, arg);
	}
}

void
sw_sender_abort(SwSender *s, SwTransfer *t)
{
	if (t->easy == NULL)
		return;
	dlist_delete(&t->in_flight_node);
	curl_multi_remove_handle(s->multi, t->easy);
	curl_easy_cleanup(t->easy);
	t->easy = NULL;
	curl_slist_free_all(t->slist);
	t->slist = NULL;
	s->in_flight--;
}

static int
collect_finished(SwSender *s, SwDoneCallback done, void *arg)
{
	CURLMsg *msg;
	int		 left;
	int		 n = 0;

	while ((msg = curl_multi_info_read(s->multi, &left)) != NULL)
	{
		SwTransfer *t;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &t);
		finish_transfer(s, t, msg->data.result, done, arg);
		n++;
	}
	return n;
}

/*
 * Give up the requests that have had seriesweb.timeout to run; called after
 * curl ran, so that what had arrived by then was read first.  Requests
 * started later have had no more time to run than earlier ones, so the
 * oldest that is still within its time ends the search.
 */
static int
expire_timed_out(SwSender *s, SwDoneCallback done, void *arg)
{
	TimestampTz		   now = GetCurrentTimestamp();
	int64			   limit_us = (int64) sw_timeout_ms * 1000;
	dlist_mutable_iter it;
	int				   n = 0;

	dlist_foreach_modify(it, &s->transfers)
	{
		SwTransfer *t = dlist_container(SwTransfer, in_flight_node, it.cur);

		if (charged_us(s, t, now) < limit_us)
			break;
		finish_transfer(s, t, CURLE_OPERATION_TIMEDOUT, done, arg);
		n++;
	}
	return n;
}

/* How long the oldest request in flight may still run, in ms. */
static int
oldest_ms_left(SwSender *s)
{
	SwTransfer *t = dlist_head_element(SwTransfer, in_flight_node, &s->transfers);
	int64		left_us = (int64) sw_timeout_ms * 1000 - charged_us(s, t, GetCurrentTimestamp());

	return left_us <= 0 ? 0 : (int) Min((left_us + 999) / 1000, INT_MAX);
}

int
sw_sender_run(SwSender *s, int timeout_ms, SwDoneCallback done, void *arg)
{
	int running;
	int n;

	account_stall(s, GetCurrentTimestamp(), 0);
	check_multi(curl_multi_perform(s->multi, &running), "curl_multi_perform");
	n = collect_finished(s, done, arg);
	if (n == 0 && s->in_flight > 0)
	{
		timeout_ms = Min(timeout_ms, oldest_ms_left(s));
		check_multi(curl_multi_poll(s->multi, NULL, 0, timeout_ms, NULL), "curl_multi_poll");
		account_stall(s, GetCurrentTimestamp(), timeout_ms);
		check_multi(curl_multi_perform(s->multi, &running), "curl_multi_perform");
		n = collect_finished(s, done, arg);
	}
	n += expire_timed_out(s, done, arg);
	drop_connections_if_idle(s);
	return n;
}
