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
 *	- its path has the template's segments: as many, those the template
 *	  wrote without placeholder as written, and no "." or ".." where the
 *	  template has a placeholder (a value never leaves its segment);
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
#include "nodes/pg_list.h"

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

/*
 * src[0] is the "{" of a placeholder of a template that compiled: where is
 * its "}"?  Only a quoted fallback, after "|", may hold one before.
 */
static const char *
placeholder_end(const char *src)
{
	const char *p = src + 1;

	p += strcspn(p, "}|");
	if (*p == '|')
	{
		p += strcspn(p, "\"}");
		if (*p == '"')
		{
			for (p++; *p != '"'; p++)
				if (*p == '\\')
					p++;
			p += strcspn(p, "}");
		}
	}
	return p;
}

/*
 * The URL template with each placeholder as \x01 and "{{", "}}" as the
 * braces they write: read from the text here, not taken from the compiled
 * template, so that the oracle does not lean on the parser it checks.
 */
static char *
template_shape(const char *url)
{
	StringInfoData shape;

	initStringInfo(&shape);
	for (const char *p = url; *p; p++)
	{
		if ((*p == '{' || *p == '}') && p[1] == *p)
			appendStringInfoChar(&shape, *p++);
		else if (*p == '{')
		{
			p = placeholder_end(p);
			appendStringInfoChar(&shape, '\x01');
		}
		else
			appendStringInfoChar(&shape, *p);
	}
	return shape.data;
}

/* The "/"-separated segments of the path of an http(s) URL (or shape). */
static List *
path_segments(const char *url)
{
	const char *p = strstr(url, "://") + 3;
	const char *end;
	List	   *segs = NIL;

	p += strcspn(p, "/?#");
	end = p + strcspn(p, "?#");
	while (p < end)
	{
		const char *slash;

		p += *p == '/';
		slash = memchr(p, '/', end - p);
		segs = lappend(segs, pnstrdup(p, (slash ? slash : end) - p));
		p += (slash ? slash : end) - p;
	}
	return segs;
}

static bool
is_dot_segment(const char *seg)
{
	return strcmp(seg, ".") == 0 || strcmp(seg, "..") == 0;
}

/* The path is the template's: libcurl and the receiver see the same segments. */
static void
check_url_path(const char *template_url, const char *url)
{
	List *want = path_segments(template_shape(template_url));
	List *got = path_segments(url);

	if (list_length(want) != list_length(got))
		sw_fuzz_finding("rendered url \"%s\" has %d path segments, its template \"%s\" %d", url,
						list_length(got), template_url, list_length(want));
	for (int i = 0; i < list_length(want); i++)
	{
		const char *w = list_nth(want, i);
		const char *g = list_nth(got, i);

		if (strchr(w, '\x01') == NULL && strcmp(w, g) != 0)
			sw_fuzz_finding("rendered url \"%s\" has the path segment \"%s\" where its template "
							"\"%s\" wrote \"%s\"",
							url, g, template_url, w);
		if (strchr(w, '\x01') != NULL && is_dot_segment(g))
			sw_fuzz_finding("rendered url \"%s\" has the dot segment \"%s\" where its template "
							"\"%s\" has a placeholder",
							url, g, template_url);
	}
}

static void
check_request(const char *template_url, const SwRenderedRequest *req, bool json)
{
	check_url(req->url);
	check_url_path(template_url, req->url);
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
	char			  *template_url;
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
	/* a copy for the oracle: the template itself must not point into it */
	template_url = pstrdup(sec[SEC_URL]);
	pfree(headers);
	pfree(sec[SEC_URL]);
	if (body)
		pfree(body);

	sw_fuzz_no_error_begin("sw_webhook_render");
	err = sw_webhook_render(tmpl, &ctx, 42, &req);
	sw_fuzz_no_error_end();
	if (err == NULL)
		check_request(template_url, &req, body_is_json(&req));
}

const SwFuzzTarget sw_fuzz_template_target = {"template", run_template};
