/*-------------------------------------------------------------------------
 *
 * response.c
 *	  What the sender keeps of a receiver's answer.
 *
 * A receiver may answer any bytes, and the body limit may fall inside a
 * character; the database must only ever hold valid text (an invalid byte
 * fails convert_from() and the restore of a dump that holds it, and a NUL
 * cannot be stored at all).  So everything kept of an answer goes through
 * sw_valid_text, once: the body when the transfer is done (the worker stores
 * it in delivery_attempts.response_body, test_webhook() returns it), each
 * header line as it arrives (test_webhook's response_headers) and the
 * sender's error texts (a redirect's Location).  Bytes that are valid text
 * in the database encoding are kept as they are, without converting from
 * the response's charset.
 *
 * sender.c's libcurl callbacks call sw_response_header and sw_response_body
 * and must not ereport: nothing here does but on out-of-memory.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <time.h>

#include <curl/curl.h>

#include "mb/pg_wchar.h"
#include "response.h"
#include "settings.h"

/* Raw header lines kept for test_webhook; more are dropped. */
#define MAX_KEPT_HEADERS 65536

/* An HTTP-date is at most 33 bytes (RFC 850 form); longer is not one. */
#define MAX_HTTP_DATE 64

void
sw_response_begin(SwTransfer *t)
{
	t->retry_after_s = -1;
	/* A reload while the request is in flight must not change its limit. */
	t->body_limit = sw_response_body_limit;
	initStringInfo(&t->response_body);
	if (t->keep_headers)
		initStringInfo(&t->response_headers);
}

void
sw_response_header(SwTransfer *t, const char *line, size_t len)
{
	/* A new status line (after 1xx): forget the previous headers. */
	if (len >= 5 && strncmp(line, "HTTP/", 5) == 0)
	{
		t->retry_after_s = -1;
		if (t->keep_headers)
			resetStringInfo(&t->response_headers);
		return;
	}
	if (len > 12 && pg_strncasecmp(line, "Retry-After:", 12) == 0)
		t->retry_after_s = sw_parse_retry_after(line + 12, len - 12);
	/* Whole lines only, so a kept line never ends inside a character. */
	if (t->keep_headers && len > 2 && t->response_headers.len < MAX_KEPT_HEADERS)
	{
		char *text =
			sw_valid_text(line, (int) Min(len, (size_t) INT_MAX), INT_MAX, GetDatabaseEncoding());

		appendStringInfoString(&t->response_headers, text);
		pfree(text);
	}
}

void
sw_response_body(SwTransfer *t, const char *data, size_t len)
{
	/*
	 * Up to MAX_MULTIBYTE_CHAR_LEN - 1 bytes past the limit: a character that
	 * begins before the limit is then kept whole, so sw_valid_text can tell
	 * one that does not fit (dropped) from an invalid one (replaced).
	 */
	int keep = t->body_limit > 0 ? t->body_limit + MAX_MULTIBYTE_CHAR_LEN - 1 : 0;

	if (t->response_body.len < keep)
		appendBinaryStringInfo(&t->response_body, data,
							   (int) Min(len, (size_t) (keep - t->response_body.len)));
}

void
sw_response_finish(SwTransfer *t)
{
	char *text = sw_valid_text(t->response_body.data, t->response_body.len, t->body_limit,
							   GetDatabaseEncoding());

	resetStringInfo(&t->response_body);
	appendStringInfoString(&t->response_body, text);
	pfree(text);
}

/* How much of the valid text s[0..len) fits in room, in whole characters. */
static int
whole_characters(const char *s, int len, int room, int encoding)
{
	int n = 0;

	if (len <= room)
		return len;
	while (n < len)
	{
		int charlen = pg_encoding_mblen(encoding, s + n);

		if (n + charlen > room)
			break;
		n += charlen;
	}
	return n;
}

char *
sw_valid_text(const char *raw, int len, int limit, int encoding)
{
	/* U+FFFD is the REPLACEMENT CHARACTER; "?" is in every server encoding. */
	const char	  *bad = encoding == PG_UTF8 ? "\xEF\xBF\xBD" : "?";
	int			   badlen = strlen(bad);
	StringInfoData out;

	initStringInfo(&out);
	while (len > 0)
	{
		int valid = pg_encoding_verifymbstr(encoding, raw, len);
		int fit = whole_characters(raw, valid, limit - out.len, encoding);

		appendBinaryStringInfo(&out, raw, fit);
		if (fit < valid || valid == len || out.len + badlen > limit)
			break;
		appendBinaryStringInfo(&out, bad, badlen);
		raw += valid + 1;
		len -= valid + 1;
	}
	return out.data;
}

/* 1*DIGIT, saturating at INT_MAX; -1 for anything else. */
static int
delay_seconds(const char *value, size_t len)
{
	int64 secs = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (value[i] < '0' || value[i] > '9')
			return -1;
		secs = Min(secs * 10 + (value[i] - '0'), (int64) INT_MAX);
	}
	return (int) secs;
}

/* Seconds until an HTTP-date (0 if past); -1 if it is not one. */
static int
seconds_until(const char *value, size_t len)
{
	char   date[MAX_HTTP_DATE];
	time_t when;
	time_t now = time(NULL);

	/* Every form of RFC 9110 begins with the day name. */
	if (len >= sizeof(date) ||
		!((value[0] >= 'A' && value[0] <= 'Z') || (value[0] >= 'a' && value[0] <= 'z')))
		return -1;
	memcpy(date, value, len);
	date[len] = '\0';
	/* curl_getdate reads all three forms (and more); -1 when it cannot. */
	when = curl_getdate(date, NULL);
	if (when < 0)
		return -1;
	return when > now ? (int) Min(when - now, (time_t) INT_MAX) : 0;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int
sw_parse_retry_after(const char *value, size_t len)
{
	/* Optional whitespace around the value, and the line's own CRLF. */
	while (len > 0 && is_blank(value[0]))
	{
		value++;
		len--;
	}
	while (len > 0 && is_blank(value[len - 1]))
		len--;
	if (len == 0)
		return -1;
	if (value[0] >= '0' && value[0] <= '9')
		return delay_seconds(value, len);
	return seconds_until(value, len);
}

int
sw_retry_after_delay_ms(int retry_after_s, int longest_ms)
{
	if (retry_after_s <= 0 || longest_ms <= 0)
		return 0;
	return (int) Min((int64) retry_after_s * 1000, (int64) longest_ms);
}
