/*-------------------------------------------------------------------------
 *
 * response.h
 *	  What the sender keeps of a receiver's answer, as valid text: its body
 *	  (cut to seriesweb.response_body_limit), its header lines (for
 *	  test_webhook) and the wait its Retry-After asks for.  sender.c's
 *	  libcurl callbacks hand every header line and body chunk here.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_RESPONSE_H
#define SERIESWEB_RESPONSE_H

#include "postgres.h"

#include "sender.h"

/* Reset t's response fields before its request starts. */
extern void sw_response_begin(SwTransfer *t);

/* One header line as libcurl hands it, CRLF included (not NUL-terminated). */
extern void sw_response_header(SwTransfer *t, const char *line, size_t len);

/* One chunk of the body as libcurl hands it. */
extern void sw_response_body(SwTransfer *t, const char *data, size_t len);

/* The transfer is done: turn the body kept so far into text. */
extern void sw_response_finish(SwTransfer *t);

/*
 * raw[0..len) as a palloc'd string valid in encoding, at most limit bytes:
 * each byte that does not begin a valid character (NUL included) becomes
 * U+FFFD in UTF8 and "?" in other encodings, and the text ends before the
 * first character that would not fit whole.
 */
extern char *sw_valid_text(const char *raw, int len, int limit, int encoding);

/*
 * A Retry-After value (delay-seconds or an HTTP-date; not NUL-terminated)
 * as seconds from now, at most INT_MAX; -1 when it is neither.
 */
extern int sw_parse_retry_after(const char *value, size_t len);

/* The wait a Retry-After of retry_after_s asks for, in [0, longest_ms]. */
extern int sw_retry_after_delay_ms(int retry_after_s, int longest_ms);

#endif /* SERIESWEB_RESPONSE_H */
