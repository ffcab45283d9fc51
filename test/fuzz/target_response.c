/*-------------------------------------------------------------------------
 *
 * target_response.c
 *	  Fuzz target "response": feed what a receiver may answer through the
 *	  functions the sender's libcurl callbacks call (response.c) — header
 *	  lines, body chunks, Retry-After values — and check what is kept.
 *
 * Input: four sections (harness.h), taken as raw bytes (NULs and invalid
 * bytes are the point):
 *	- settings: "LIMIT ENCODING CHUNK LONGEST", each optional: the body
 *	  limit in bytes (default 8192), a server encoding name (UTF8), the
 *	  size of the body chunks libcurl hands over (the whole body at once)
 *	  and the longest retry delay in ms (300000);
 *	- header lines, one a line, each handed over with CRLF as libcurl
 *	  does (a line "HTTP/1.1 100 Continue" starts a new answer);
 *	- the body;
 *	- Retry-After values, one a line, each handed over as a header line.
 *
 * The database encoding is switched to the chosen one for the run
 * (SetDatabaseEncoding: only a pointer), so the code sees what it would
 * see in such a database.  Nothing here may raise an ERROR: it runs inside
 * libcurl's callbacks.  Oracles:
 *	- the kept body and header lines are valid text in the encoding, with
 *	  no NUL, and the body is at most the limit;
 *	- a body that was valid text is kept as a prefix of it, clipped by less
 *	  than one character;
 *	- each Retry-After gives -1 (ignored) or [0, INT_MAX] seconds, the same
 *	  as sw_parse_retry_after says for the value alone, and the worker's
 *	  delay from it is within [0, the longest retry delay]; an all-digit
 *	  value gives its number (saturated).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "mb/pg_wchar.h"

#include "harness.h"
#include "response.h"
#include "sender.h"
#include "settings.h"

enum
{
	SEC_SETTINGS,
	SEC_HEADERS,
	SEC_BODY,
	SEC_RETRY_AFTER,
	NSECTIONS
};

typedef struct Settings
{
	int limit;
	int encoding;
	int chunk;
	int longest_ms;
} Settings;

/* The next blank-separated word of *s as a long, or dflt; clamped to [lo, hi]. */
static long
next_number(char **s, long dflt, long lo, long hi)
{
	char *word = strsep(s, " ");
	long  n;

	if (word == NULL || *word == '\0')
		return dflt;
	n = strtol(word, NULL, 10);
	return Min(Max(n, lo), hi);
}

static void
read_settings(char *text, Settings *set)
{
	char *s = text;
	char *name;

	set->limit = (int) next_number(&s, 8192, 0, 1024 * 1024);
	name = strsep(&s, " ");
	set->encoding = name ? pg_char_to_encoding(name) : PG_UTF8;
	if (!PG_VALID_BE_ENCODING(set->encoding))
		set->encoding = PG_UTF8;
	set->chunk = (int) next_number(&s, INT_MAX, 1, INT_MAX);
	set->longest_ms = (int) next_number(&s, 300000, 0, 24 * 3600 * 1000);
}

/* Hand a line to the header callback as libcurl does: with its CRLF. */
static void
header_line(SwTransfer *t, const char *line, int len)
{
	char *with_crlf = palloc(len + 3);

	memcpy(with_crlf, line, len);
	memcpy(with_crlf + len, "\r\n", 3);
	sw_response_header(t, with_crlf, len + 2);
	pfree(with_crlf);
}

static void
feed_headers(SwTransfer *t, const char *lines, int len)
{
	const char *end = lines + len;

	for (const char *p = lines; p < end;)
	{
		const char *nl = memchr(p, '\n', end - p);
		const char *stop = nl ? nl : end;

		header_line(t, p, stop - p);
		p = stop + 1;
	}
}

static void
feed_body(SwTransfer *t, const char *body, int len, int chunk)
{
	for (int off = 0; off < len; off += Min(chunk, len - off))
		sw_response_body(t, body + off, Min(chunk, len - off));
}

static void
check_text(const char *what, const char *text, int len, int encoding)
{
	if ((int) strlen(text) != len)
		sw_fuzz_finding("the kept %s holds a NUL byte at %d of %d", what, (int) strlen(text), len);
	if (pg_encoding_verifymbstr(encoding, text, len) != len)
		sw_fuzz_finding("the kept %s is not valid %s text at byte %d of %d", what,
						pg_encoding_to_char(encoding), pg_encoding_verifymbstr(encoding, text, len),
						len);
}

static void
check_body(const SwTransfer *t, const char *raw, int rawlen, const Settings *set)
{
	const StringInfoData *kept = &t->response_body;

	check_text("body", kept->data, kept->len, set->encoding);
	if (kept->len > set->limit)
		sw_fuzz_finding("%d bytes of body kept, limit %d", kept->len, set->limit);
	if (pg_encoding_verifymbstr(set->encoding, raw, rawlen) != rawlen)
		return;
	/* Valid text: nothing replaced, at most one character dropped at the limit. */
	if (kept->len > rawlen || memcmp(kept->data, raw, kept->len) != 0)
		sw_fuzz_finding("a valid body of %d bytes was kept as something else", rawlen);
	if (kept->len < Min(rawlen, set->limit) - (MAX_MULTIBYTE_CHAR_LEN - 1))
		sw_fuzz_finding("a valid body of %d bytes was clipped to %d bytes, limit %d", rawlen,
						kept->len, set->limit);
}

/* What an all-digit value must give; -1 if it is not one. */
static int
digits_value(const char *v, int len)
{
	int64 n = 0;

	while (len > 0 && (*v == ' ' || *v == '\t'))
	{
		v++;
		len--;
	}
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t' || v[len - 1] == '\r'))
		len--;
	if (len == 0)
		return -1;
	for (int i = 0; i < len; i++)
	{
		if (v[i] < '0' || v[i] > '9')
			return -1;
		n = Min(n * 10 + v[i] - '0', (int64) INT_MAX);
	}
	return (int) n;
}

static void
check_retry_after(SwTransfer *t, const char *v, int len, const Settings *set)
{
	const char *name = "Retry-After:";
	char	   *line = palloc(strlen(name) + len);
	int			alone = sw_parse_retry_after(v, len);
	int			digits = digits_value(v, len);
	int			delay;

	/* Bytes, not a formatted string: v may hold a NUL. */
	memcpy(line, name, strlen(name));
	memcpy(line + strlen(name), v, len);
	header_line(t, line, strlen(name) + len);
	if (t->retry_after_s != alone)
		sw_fuzz_finding("Retry-After gave %d as a header, %d alone", t->retry_after_s, alone);
	if (alone < -1)
		sw_fuzz_finding("Retry-After gave %d seconds", alone);
	if (digits >= 0 && alone != digits)
		sw_fuzz_finding("Retry-After of digits worth %d gave %d", digits, alone);
	if (alone < 0)
		return;
	/* As the worker does for a 429 or 503. */
	delay = sw_retry_after_delay_ms(alone, sw_longest_retry_delay_ms());
	if (delay < 0 || delay > set->longest_ms)
		sw_fuzz_finding("Retry-After of %d s gave a delay of %d ms, longest %d", alone, delay,
						set->longest_ms);
}

static void
feed_retry_afters(SwTransfer *t, const char *lines, int len, const Settings *set)
{
	const char *end = lines + len;

	for (const char *p = lines; p < end;)
	{
		const char *nl = memchr(p, '\n', end - p);
		const char *stop = nl ? nl : end;

		check_retry_after(t, p, stop - p, set);
		p = stop + 1;
	}
}

static void
answer(char **sec, int *lens, const Settings *set, SwFuzzCounts *counts)
{
	SwTransfer *t = palloc0(sizeof(SwTransfer));

	t->keep_headers = true;
	sw_response_body_limit = set->limit;
	sw_retry_delay_count = 1;
	sw_retry_delays_ms[0] = set->longest_ms;

	sw_fuzz_no_error_begin("the response callbacks");
	sw_response_begin(t);
	feed_headers(t, sec[SEC_HEADERS], lens[SEC_HEADERS]);
	feed_body(t, sec[SEC_BODY], lens[SEC_BODY], set->chunk);
	feed_retry_afters(t, sec[SEC_RETRY_AFTER], lens[SEC_RETRY_AFTER], set);
	sw_response_finish(t);
	sw_fuzz_no_error_end();
	counts->accepted++;

	check_text("header lines", t->response_headers.data, t->response_headers.len, set->encoding);
	check_body(t, sec[SEC_BODY], lens[SEC_BODY], set);
}

static void
run_response(const char *data, size_t size, SwFuzzCounts *counts)
{
	char	*sec[NSECTIONS];
	int		 lens[NSECTIONS];
	Settings set;
	int		 database_encoding = GetDatabaseEncoding();

	sw_fuzz_raw_sections(data, size, sec, lens, NSECTIONS);
	read_settings(sec[SEC_SETTINGS], &set);
	counts->decoded++;

	SetDatabaseEncoding(set.encoding);
	PG_TRY();
	{
		answer(sec, lens, &set, counts);
	}
	PG_FINALLY();
	{
		SetDatabaseEncoding(database_encoding);
	}
	PG_END_TRY();
}

const SwFuzzTarget sw_fuzz_response_target = {"response", run_response};
