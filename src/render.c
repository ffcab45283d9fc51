/*-------------------------------------------------------------------------
 *
 * render.c
 *	  Webhook templates: validate and compile a webhook block's method, URL,
 *	  headers and body once, then render them for each delivery.
 *
 * Compiling happens when a block is written (seriesweb._check_webhook, from
 * the blocks trigger) and when the matcher builds its series cache;
 * rendering happens per delivery, inside the application's INSERT, so it
 * does no parsing and no catalog access, and it reports bad data by
 * returning a message (stored on the delivery) instead of raising an error.
 *
 * This file holds render.h's interface, the checks of the method, of the
 * URL's shape and of the header names and values, the length limits of the
 * rendered URL and headers, and the SQL-callable functions.  Template
 * strings (the URL, a header value, a string of the body) are compiled and
 * rendered by render_template.c, the body by render_body.c;
 * render_internal.h is what the three share.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "render.h"
#include "settings.h"
#include "render_internal.h"

/*
 * Longest URL a delivery may have, rendered: 8 kB is what common servers
 * and proxies accept in a request line.  Bodies are capped by the setting
 * seriesweb.max_body_size.
 */
#define SW_MAX_URL_LEN 8192

/*
 * Longest header name, and longest header value rendered: common servers
 * refuse longer header lines (nginx and Apache stop at 8 kB), and without a
 * cap a value made of placeholders could grow to gigabytes inside the
 * application's INSERT.
 */
#define SW_MAX_HEADER_LEN 8192

/*
 * Most headers a block may set (Apache's default LimitRequestFields): each
 * is checked against the others for case-insensitive duplicates.
 */
#define SW_MAX_HEADERS 100

/* ------------------------------------------------------------------------
 * Method and URL
 * ------------------------------------------------------------------------
 */

static const char *
compile_method(const char *method)
{
	if (pg_strcasecmp(method, "POST") == 0)
		return "POST";
	if (pg_strcasecmp(method, "PUT") == 0)
		return "PUT";
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported webhook method \"%s\"", method), errhint("Use POST or PUT.")));
	return NULL; /* keep compiler quiet */
}

static void url_error(const char *url, const char *what, const char *hint) pg_attribute_noreturn();

static void
url_error(const char *url, const char *what, const char *hint)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("webhook url \"%s\" %s", url, what), errhint("%s", hint)));
}

/*
 * The URL with each placeholder as \x01, so that its structure can be
 * checked: placeholder values are percent-encoded, so they can never add a
 * "/", "@" or ":" (nor a "." after the host).  Literal text must have no
 * blank or control character.
 */
static char *
url_shape(const char *url, const SwTemplateText *t)
{
	StringInfoData shape;

	initStringInfo(&shape);
	for (int i = 0; i < t->nsegs; i++)
	{
		const SwSegment *seg = &t->segs[i];

		if (seg->literal == NULL)
		{
			appendStringInfoChar(&shape, '\x01');
			continue;
		}
		for (int j = 0; j < seg->literal_len; j++)
		{
			unsigned char c = (unsigned char) seg->literal[j];

			if (c <= 0x20 || c == 0x7f)
				ereport(
					ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("webhook url \"%s\" contains whitespace or a control character", url),
					 errdetail("It contains the byte 0x%02x.", c),
					 errhint("Percent-encode it (a space is %%20), or insert the text with a "
							 "placeholder, whose values are percent-encoded.")));
		}
		appendBinaryStringInfo(&shape, seg->literal, seg->literal_len);
	}
	return shape.data;
}

/* Check "host[:port]" or "[v6]:port"; true when the host has a placeholder. */
static bool
check_url_authority(const char *url, const char *auth, size_t len)
{
	const char *host = auth;
	size_t		host_len;
	const char *port = NULL;
	size_t		port_len;

	if (len > 0 && auth[0] == '[')
	{
		const char *close = memchr(auth, ']', len);

		if (close == NULL || close == auth + 1 || (close + 1 < auth + len && close[1] != ':'))
			url_error(url, "has an invalid host",
					  "Write an IPv6 address in brackets, as in https://[2001:db8::1]/hook.");
		host_len = close + 1 - auth;
		port = close + 1 < auth + len ? close + 2 : NULL;
	}
	else
	{
		const char *colon = memchr(auth, ':', len);

		host_len = colon ? colon - auth : len;
		port = colon ? colon + 1 : NULL;
	}
	if (host_len == 0)
		url_error(url, "has no host",
				  "Write the host after the scheme, as in https://example.com/hook.");
	if (port)
	{
		port_len = auth + len - port;
		if (memchr(port, '\x01', port_len) == NULL &&
			(port_len == 0 || port_len > 5 || strspn(port, "0123456789") < port_len ||
			 atoi(port) < 1 || atoi(port) > 65535))
			url_error(url, psprintf("has an invalid port \"%s\"", pnstrdup(port, port_len)),
					  "Write a port number from 1 to 65535, or leave it out.");
	}
	return memchr(host, '\x01', host_len) != NULL;
}

/* At most maxlen bytes of s, not cutting a character, for messages. */
static char *
clip_for_message(const char *s, int maxlen)
{
	int len = strlen(s);

	if (len <= maxlen)
		return pstrdup(s);
	return psprintf("%s...", pnstrdup(s, pg_mbcliplen(s, len, maxlen)));
}

/* Placeholders can only add text: a URL whose literal text is too long always is. */
static void
check_url_length(const char *url, const SwTemplateText *t)
{
	int len = 0;

	for (int i = 0; i < t->nsegs; i++)
		if (t->segs[i].literal)
			len += t->segs[i].literal_len;
	if (len > SW_MAX_URL_LEN)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("webhook url \"%s\" is longer than %d bytes",
							   clip_for_message(url, 64), SW_MAX_URL_LEN),
						errdetail("Its text outside placeholders is %d bytes long.", len),
						errhint("Send long values in the body or in a header.")));
}

/* "." or "..": this directory or its parent, to the receiver. */
static bool
is_dot_segment(const char *seg, size_t len)
{
	return (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.');
}

/* Placeholders and one or two dots: a dot segment if they all render empty. */
static bool
may_become_dot_segment(const char *seg, size_t len)
{
	int	 dots = 0;
	bool placeholder = false;

	for (size_t i = 0; i < len; i++)
	{
		if (seg[i] == '.')
			dots++;
		else if (seg[i] == '\x01')
			placeholder = true;
		else
			return false;
	}
	return placeholder && dots > 0 && dots <= 2;
}

/*
 * The shape of the path (from url_shape, up to its query or fragment) when
 * a segment of it may become a dot segment, for check_rendered_path; NULL
 * (nothing to check) for nearly every URL.  Such a URL is not refused: one
 * that was accepted before must still compile in the matcher's cache.
 */
static char *
path_shape_to_check(const char *path)
{
	const char *end = path + strcspn(path, "?#");
	const char *p = path;

	while (p < end)
	{
		size_t seg_len;

		p += *p == '/';
		seg_len = strcspn(p, "/?#");
		if (may_become_dot_segment(p, seg_len))
			return pnstrdup(path, end - path);
		p += seg_len;
	}
	return NULL;
}

static void
compile_url(SwWebhookTemplate *t, const char *url)
{
	char  *shape;
	int	   off;
	size_t auth_len;

	sw_compile_text(url, strlen(url), "url", SW_ENC_URL, &t->url);
	check_url_length(url, &t->url);
	shape = url_shape(url, &t->url);
	if (pg_strncasecmp(shape, "http://", 7) == 0)
		off = 7;
	else if (pg_strncasecmp(shape, "https://", 8) == 0)
		off = 8;
	else
		url_error(url, "is not an absolute http or https URL",
				  "Start it with https:// or http:// followed by the host; the scheme cannot be a "
				  "placeholder.");
	auth_len = strcspn(shape + off, "/?#");
	if (memchr(shape + off, '@', auth_len) != NULL)
		url_error(url, "contains credentials before the host",
				  "Remove the user:password@ part and send credentials in a header, such as "
				  "Authorization.");
	t->url_host_offset = check_url_authority(url, shape + off, auth_len) ? off : 0;
	t->url_path_shape = path_shape_to_check(shape + off + auth_len);
	pfree(shape);
}

/* ------------------------------------------------------------------------
 * Headers
 * ------------------------------------------------------------------------
 */

/* RFC 9110 tchar. */
static bool
is_token_char(unsigned char c)
{
	return sw_ascii_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
check_header_name(const char *name)
{
	static const char *const reserved[] = {"Content-Length", "Host", "Transfer-Encoding",
										   "Connection"};

	if (strlen(name) > SW_MAX_HEADER_LEN)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("header name \"%s\" is longer than %d bytes",
							   clip_for_message(name, 64), SW_MAX_HEADER_LEN),
						errhint("Give the header a shorter name.")));
	for (const char *p = name; *p; p++)
		if (!is_token_char((unsigned char) *p))
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid header name \"%s\"", name),
				 errdetail(
					 "Header names are made of letters, digits and !#$%%&'*+-.^_`|~ (RFC 9110)."),
				 errhint("Remove the spaces, colons or other characters from the name.")));
	if (*name == '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("invalid header name \"\""), errhint("Give every header a name.")));
	for (int i = 0; i < lengthof(reserved); i++)
		if (pg_strcasecmp(name, reserved[i]) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("header \"%s\" is set by seriesweb", name),
							errdetail("seriesweb sets Content-Length, Host, Transfer-Encoding and "
									  "Connection itself."),
							errhint("Remove the header.")));
	if (pg_strncasecmp(name, "webhook-", 8) == 0)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("header \"%s\" is set by seriesweb", name),
			 errdetail("The webhook-* headers are the Standard Webhooks signature."),
			 errhint("Remove the header; give the block a secret to have its requests signed.")));
}

static bool
has_line_break(const char *s, int len)
{
	return memchr(s, '\r', len) || memchr(s, '\n', len) || memchr(s, '\0', len);
}

static void
check_header_value(const char *name, const SwTemplateText *value)
{
	int literal_len = 0;

	for (int i = 0; i < value->nsegs; i++)
	{
		const SwSegment *seg = &value->segs[i];

		if (seg->literal
				? has_line_break(seg->literal, seg->literal_len)
				: seg->has_fallback && has_line_break(seg->fallback_text, seg->fallback_text_len))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("header \"%s\" value contains CR, LF or NUL", name),
							errhint("Write header values on one line.")));
		if (seg->literal)
			literal_len += seg->literal_len;
	}
	/* Placeholders can only add text, as in check_url_length. */
	if (literal_len > SW_MAX_HEADER_LEN)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("header \"%s\" value is longer than %d bytes", name, SW_MAX_HEADER_LEN),
				 errdetail("Its text outside placeholders is %d bytes long.", literal_len),
				 errhint("Send long values in the body.")));
}

/* Set the body format from the Content-Type header's value. */
static void
compile_content_type(SwWebhookTemplate *t, const char *name, const char *raw,
					 const SwTemplateText *value)
{
	const char *start;
	const char *end;
	int			len;

	if (sw_text_has_placeholder(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("header \"%s\" value \"%s\" is not a literal media type", name, raw),
				 errdetail("The Content-Type decides the body format when the block is defined."),
				 errhint("Write application/json or application/x-www-form-urlencoded without "
						 "placeholders or braces.")));
	/* no placeholder: one literal segment at most */
	start = value->nsegs > 0 ? value->segs[0].literal : "";
	while (*start == ' ' || *start == '\t')
		start++;
	end = start + strcspn(start, ";");
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	len = end - start;
	if (len == strlen("application/json") && pg_strncasecmp(start, "application/json", len) == 0)
		t->format = SW_BODY_JSON;
	else if (len == strlen("application/x-www-form-urlencoded") &&
			 pg_strncasecmp(start, "application/x-www-form-urlencoded", len) == 0)
		t->format = SW_BODY_FORM;
	else
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("unsupported Content-Type \"%s\"", raw),
						errhint("Use application/json or application/x-www-form-urlencoded "
								"(parameters such as \"; charset=utf-8\" may follow).")));
}

static void
compile_header(SwWebhookTemplate *t, char *name, const JsonbValue *v, bool *have_type)
{
	SwHeader *h = &t->headers[t->nheaders];
	char	 *raw;

	check_header_name(name);
	for (int i = 0; i < t->nheaders; i++)
		if (pg_strcasecmp(name, t->headers[i].name) == 0)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("header \"%s\" is given twice, also as \"%s\"", name,
								   t->headers[i].name),
							errhint("Header names are case-insensitive; keep one of them.")));
	/* Values are never printed: they may be credentials. */
	if (v->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("header \"%s\" has a value that is not a string", name),
						errhint("Write header values as JSON strings.")));
	raw = pnstrdup(v->val.string.val, v->val.string.len);
	if (has_line_break(v->val.string.val, v->val.string.len))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("header \"%s\" value contains CR, LF or NUL", name),
						errhint("Write header values on one line.")));
	h->name = name;
	sw_compile_text(raw, v->val.string.len, psprintf("header \"%s\"", name), SW_ENC_RAW, &h->value);
	check_header_value(name, &h->value);
	if (pg_strcasecmp(name, "Content-Type") == 0)
	{
		compile_content_type(t, name, raw, &h->value);
		*have_type = true;
	}
	t->nheaders++;
}

/* "A, B and C": the names of the headers compiled so far. */
static char *
header_names(const SwWebhookTemplate *t)
{
	StringInfoData names;

	initStringInfo(&names);
	for (int i = 0; i < t->nheaders; i++)
		appendStringInfo(&names, "%s%s",
						 i == 0					? ""
						 : i == t->nheaders - 1 ? " and "
												: ", ",
						 t->headers[i].name);
	return names.data;
}

static void
compile_headers(SwWebhookTemplate *t, Jsonb *headers)
{
	JsonbIterator	  *it;
	JsonbIteratorToken tok;
	JsonbValue		   key;
	JsonbValue		   value;
	bool			   have_type = false;

	/* The headers are never printed: their values may be credentials. */
	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook headers are not a JSON object"),
				 errdetail("They are a JSON %s.", JB_ROOT_IS_SCALAR(headers) ? "scalar" : "array"),
				 errhint("Write them as {\"Content-Type\": \"application/json\", "
						 "\"Authorization\": \"Bearer ...\"}.")));
	if (JB_ROOT_COUNT(headers) > SW_MAX_HEADERS)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("webhook headers have %d entries, more than %d",
							   (int) JB_ROOT_COUNT(headers), SW_MAX_HEADERS),
						errhint("Send the data in the body.")));
	t->headers = palloc0(Max(JB_ROOT_COUNT(headers), 1) * sizeof(SwHeader));
	it = JsonbIteratorInit(&headers->root);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY)
			continue;
		(void) JsonbIteratorNext(&it, &value, true);
		compile_header(t, pnstrdup(key.val.string.val, key.val.string.len), &value, &have_type);
	}
	if (!have_type)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("webhook headers have no Content-Type"),
						t->nheaders > 0 ? errdetail("They name %s.", header_names(t)) : 0,
						errhint("Add \"Content-Type\": \"application/json\" (or "
								"\"application/x-www-form-urlencoded\").")));
}

/* ------------------------------------------------------------------------
 * Compile
 * ------------------------------------------------------------------------
 */

SwWebhookTemplate *
sw_webhook_compile(const char *method, const char *url, Jsonb *headers, const char *body_json)
{
	SwWebhookTemplate *t = palloc0(sizeof(SwWebhookTemplate));

	t->method = compile_method(method);
	compile_url(t, url);
	compile_headers(t, headers);
	if (body_json)
		sw_compile_body(t, body_json);
	else
		t->default_body = true;
	return t;
}

/* ------------------------------------------------------------------------
 * Render
 * ------------------------------------------------------------------------
 */

/*
 * The rendered path has the template's segments, as values cannot add a
 * "/"; a "." or ".." among them must be one the template wrote, not one
 * that literal dots made with placeholders that rendered empty.
 */
static char *
check_rendered_path(const SwWebhookTemplate *t, const char *url)
{
	const char *shape = t->url_path_shape;
	const char *path;

	if (shape == NULL)
		return NULL;
	path = strstr(url, "://") + 3;
	path += strcspn(path, "/?#");
	while (*shape == '/' && *path == '/')
	{
		size_t shape_len = strcspn(++shape, "/");
		size_t path_len = strcspn(++path, "/?#");

		if (memchr(shape, '\x01', shape_len) != NULL && is_dot_segment(path, path_len))
			return psprintf("rendered url has the dot segment \"%.*s\"", (int) path_len, path);
		shape += shape_len;
		path += path_len;
	}
	return NULL;
}

static char *
render_url(SwRender *r, const SwWebhookTemplate *t, SwRenderedRequest *out)
{
	StringInfoData url;

	initStringInfo(&url);
	sw_render_text(r, &url, &t->url);
	if (url.len > SW_MAX_URL_LEN)
		return psprintf("rendered url is longer than %d bytes", SW_MAX_URL_LEN);
	out->url = url.data;
	/* strchr finds the terminating NUL too: nothing after the scheme */
	if (t->url_host_offset > 0 && strchr("/?#:", url.data[t->url_host_offset]) != NULL)
		return psprintf("rendered url has an empty host");
	return check_rendered_path(t, url.data);
}

static char *
render_headers(SwRender *r, const SwWebhookTemplate *t, SwRenderedRequest *out)
{
	/* nheaders counts the lines filled so far: a caller may store them on error */
	out->nheaders = 0;
	out->headers = palloc(Max(t->nheaders, 1) * sizeof(char *));
	for (int i = 0; i < t->nheaders; i++)
	{
		const SwHeader *h = &t->headers[i];
		StringInfoData	line;
		int				value_start;

		initStringInfo(&line);
		appendStringInfo(&line, "%s: ", h->name);
		value_start = line.len;
		r->limit = value_start + SW_MAX_HEADER_LEN;
		sw_render_text(r, &line, &h->value);
		if (line.len - value_start > SW_MAX_HEADER_LEN)
			return psprintf("rendered value of header \"%s\" is longer than %d bytes", h->name,
							SW_MAX_HEADER_LEN);
		if (has_line_break(line.data + value_start, line.len - value_start))
			return psprintf("rendered value of header \"%s\" contains CR, LF or NUL", h->name);
		out->headers[out->nheaders++] = line.data;
	}
	return NULL;
}

char *
sw_webhook_render(const SwWebhookTemplate *tmpl, const SwContext *ctx, int64 delivery_id,
				  SwRenderedRequest *out)
{
	SwRender	   r;
	StringInfoData body;
	char		  *err;

	memset(out, 0, sizeof(*out));
	r.ctx = ctx;
	initStringInfo(&r.scratch);
	out->method = tmpl->method;
	r.limit = SW_MAX_URL_LEN;
	if ((err = render_url(&r, tmpl, out)) != NULL)
		return err;
	/* render_headers sets the limit of each header value */
	if ((err = render_headers(&r, tmpl, out)) != NULL)
		return err;
	r.limit = sw_max_body_size;
	initStringInfo(&body);
	if (tmpl->default_body)
		sw_render_default_payload(ctx, delivery_id, tmpl->format == SW_BODY_FORM, &body);
	else if (tmpl->format == SW_BODY_FORM)
		sw_render_form(&r, &body, tmpl);
	else
		sw_render_pieces(&r, &body, tmpl->pieces, tmpl->npieces);
	if (body.len > sw_max_body_size)
		return psprintf("rendered body is larger than seriesweb.max_body_size (%d bytes)",
						sw_max_body_size);
	out->body = body.data;
	out->body_len = body.len;
	pfree(r.scratch.data);
	return NULL;
}

/* ------------------------------------------------------------------------
 * SQL-callable functions
 * ------------------------------------------------------------------------
 */

static void
require_arg(FunctionCallInfo fcinfo, int argno, const char *name, const char *hint)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s must not be null", name), errhint("%s", hint)));
}

/* Compile (method, url, headers, body) arguments; body may be NULL. */
static SwWebhookTemplate *
compile_args(FunctionCallInfo fcinfo)
{
	require_arg(fcinfo, 0, "webhook method", "Use POST or PUT.");
	require_arg(fcinfo, 1, "webhook url", "Give an absolute https:// or http:// URL.");
	require_arg(fcinfo, 2, "webhook headers",
				"Give a JSON object with at least a Content-Type, such as {\"Content-Type\": "
				"\"application/json\"}.");
	return sw_webhook_compile(text_to_cstring(PG_GETARG_TEXT_PP(0)),
							  text_to_cstring(PG_GETARG_TEXT_PP(1)), PG_GETARG_JSONB_P(2),
							  PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3)));
}

/* seriesweb._check_webhook(method, url, headers, body): validate or raise. */
PG_FUNCTION_INFO_V1(sw_check_webhook);
Datum
sw_check_webhook(PG_FUNCTION_ARGS)
{
	(void) compile_args(fcinfo);
	PG_RETURN_VOID();
}

static Datum
headers_array(const SwRenderedRequest *req)
{
	Datum *elems = palloc(Max(req->nheaders, 1) * sizeof(Datum));

	for (int i = 0; i < req->nheaders; i++)
		elems[i] = CStringGetTextDatum(req->headers[i]);
	return PointerGetDatum(construct_array(elems, req->nheaders, TEXTOID, -1, false, TYPALIGN_INT));
}

/*
 * seriesweb._render(method, url, headers, body, context, delivery_id):
 * the request a delivery would store, or (all else NULL) its error.
 */
PG_FUNCTION_INFO_V1(sw_render_sql);
Datum
sw_render_sql(PG_FUNCTION_ARGS)
{
	SwWebhookTemplate *tmpl = compile_args(fcinfo);
	TupleDesc		   tupdesc;
	SwContext		   ctx;
	SwRenderedRequest  req;
	Datum			   values[5] = {0};
	bool			   nulls[5] = {true, true, true, true, true};
	char			  *err;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	require_arg(fcinfo, 5, "delivery_id", "Pass a number, such as 1.");
	if (PG_ARGISNULL(4))
		memset(&ctx, 0, sizeof(ctx));
	else
		sw_context_from_jsonb(PG_GETARG_JSONB_P(4), &ctx);

	err = sw_webhook_render(tmpl, &ctx, PG_GETARG_INT64(5), &req);
	if (err)
	{
		values[4] = CStringGetTextDatum(err);
		nulls[4] = false;
	}
	else
	{
		values[0] = CStringGetTextDatum(req.method);
		values[1] = CStringGetTextDatum(req.url);
		values[2] = headers_array(&req);
		values[3] = PointerGetDatum(cstring_to_text_with_len(req.body, req.body_len));
		nulls[0] = nulls[1] = nulls[2] = nulls[3] = false;
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}
