/*-------------------------------------------------------------------------
 *
 * target_template.c
 *	  Fuzz target "template": compile a webhook definition with
 *	  sw_webhook_compile, then render it with sw_webhook_render.
 *
 * Input: five sections (harness.h) — method, URL, headers (a JSON value;
 * empty for add_webhook's default), body (JSON text; empty for the default
 * payload) and context (what seriesweb._render takes; empty for none).
 *
 * Compiling may raise an ERROR: that is how a bad definition is refused.
 * Rendering runs inside the application's INSERT, so it must not (render.h);
 * and what it renders must keep the promises the sender relies on:
 *	- the URL is an http(s) URL without blank or control bytes;
 *	- header lines carry no CR, LF or NUL (no header injection);
 *	- body_len is the body's length; a JSON body is valid JSON, a form body
 *	  only form-encoded characters.
 * The template must also not point into the headers or body it was
 * compiled from (render.h: it lives in CurrentMemoryContext), so those are
 * freed before rendering; ASan reports any use of them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

#include "harness.h"
#include "render.h"

enum
{
	SEC_METHOD,
	SEC_URL,
	SEC_HEADERS,
	SEC_BODY,
	SEC_CONTEXT,
	NSECTIONS
};

#define DEFAULT_HEADERS "{\"Content-Type\": \"application/json\"}"

static bool
is_json(const char *text, int len)
{
	JsonLexContext *lex;

#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, text, len, PG_UTF8, false);
#else
	lex = makeJsonLexContextCstringLen(unconstify(char *, text), len, PG_UTF8, false);
#endif
	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

static bool
is_form_encoded(const char *text, int len)
{
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) text[i];

		if (!isalnum(c) && strchr("*-._+%=&", c) == NULL)
			return false;
	}
	return true;
}

static void
check_url(const char *url)
{
	if (pg_strncasecmp(url, "http://", 7) != 0 && pg_strncasecmp(url, "https://", 8) != 0)
		sw_fuzz_finding("rendered url \"%s\" is not http(s)", url);
	for (const char *p = url; *p; p++)
		if ((unsigned char) *p <= 0x20 || *p == 0x7f)
			sw_fuzz_finding("rendered url \"%s\" contains the byte 0x%02x", url,
							(unsigned char) *p);
}

static void
check_request(const SwRenderedRequest *req, bool json)
{
	check_url(req->url);
	for (int i = 0; i < req->nheaders; i++)
	{
		const char *line = req->headers[i];

		if (strpbrk(line, "\r\n") != NULL)
			sw_fuzz_finding("rendered header line \"%s\" contains CR or LF", line);
		if (strstr(line, ": ") == NULL)
			sw_fuzz_finding("rendered header line \"%s\" is not \"Name: value\"", line);
	}
	if (req->body_len != (int) strlen(req->body))
		sw_fuzz_finding("body_len %d but the body has %zu bytes", req->body_len, strlen(req->body));
	if (json && !is_json(req->body, req->body_len))
		sw_fuzz_finding("rendered JSON body is not valid JSON: %s", req->body);
	if (!json && !is_form_encoded(req->body, req->body_len))
		sw_fuzz_finding("rendered form body has a character form encoding never writes: %s",
						req->body);
}

/* Is the body JSON?  The Content-Type decides; compile accepts only two. */
static bool
body_is_json(const SwRenderedRequest *req)
{
	for (int i = 0; i < req->nheaders; i++)
		if (pg_strncasecmp(req->headers[i], "Content-Type:", 13) == 0)
		{
			char *lower = pstrdup(req->headers[i]);

			for (char *p = lower; *p; p++)
				*p = pg_tolower((unsigned char) *p);
			return strstr(lower, "application/json") != NULL;
		}
	sw_fuzz_finding("a compiled template rendered no Content-Type header");
}

static void
run_template(const char *data, size_t size, SwFuzzCounts *counts)
{
	char			  *sec[NSECTIONS];
	Jsonb			  *headers;
	char			  *body;
	SwContext		   ctx;
	SwWebhookTemplate *tmpl;
	SwRenderedRequest  req;
	char			  *err;

	sw_fuzz_sections(data, size, sec, NSECTIONS);
	headers = sw_fuzz_jsonb(*sec[SEC_HEADERS] ? sec[SEC_HEADERS] : DEFAULT_HEADERS);
	body = *sec[SEC_BODY] ? sec[SEC_BODY] : NULL;
	memset(&ctx, 0, sizeof(ctx));
	if (*sec[SEC_CONTEXT])
		sw_context_from_jsonb(sw_fuzz_jsonb(sec[SEC_CONTEXT]), &ctx);
	counts->decoded++;

	tmpl = sw_webhook_compile(sec[SEC_METHOD], sec[SEC_URL], headers, body);
	counts->accepted++;
	pfree(headers);
	pfree(sec[SEC_URL]);
	if (body)
		pfree(body);

	sw_fuzz_no_error_begin("sw_webhook_render");
	err = sw_webhook_render(tmpl, &ctx, 42, &req);
	sw_fuzz_no_error_end();
	if (err == NULL)
		check_request(&req, body_is_json(&req));
}

const SwFuzzTarget sw_fuzz_template_target = {"template", run_template};
