/*-------------------------------------------------------------------------
 *
 * render_template.c
 *	  Template strings: compile the text of a webhook's URL, of a header
 *	  value or of a string in its body once, then render it per delivery.
 *
 * A template string becomes a list of segments: literal text, already
 * encoded for where it goes, and placeholders (an attribute path from
 * attrs.c, with an optional fallback).  Where the text goes decides the
 * encoding: a header value as is, a URL percent-encoded, a string of a JSON
 * body escaped, a form field form-encoded.  In a URL it also depends on the
 * part: each placeholder is encoded for the part its literal text puts it
 * in, the host or what follows (render_internal.h).  A bad placeholder is an
 * ereport(ERROR) at compile time; rendering never raises one, and stops once
 * the text passes the caller's limit.
 *
 * render.c (URL and headers) and render_body.c (the body) use this file
 * through render_internal.h, and so share its encoders, its compact JSON output of jsonb
 * values and its wrapper of PostgreSQL's JSON lexer.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "render_internal.h"

#define PLACEHOLDER_HINT                                                                         \
	"Write {user.name}, or {user.name | fallback: \"text\"} for a default; write {{ and }} for " \
	"literal braces."
#define DETAIL_NOT_CLOSED "A placeholder that starts with \"{\" must end with \"}\"."
#define DETAIL_BAD_FALLBACK                                                                      \
	"After \"|\" write fallback: and one JSON value: a quoted string, a number, true, false or " \
	"null."

/* Where the literal text of a URL has got to, for its placeholders. */
typedef enum SwUrlPart
{
	SW_URL_SCHEME,
	SW_URL_HOST,
	SW_URL_AFTER_HOST
} SwUrlPart;

/* One template string being compiled, and what to call it in messages. */
typedef struct SwTextParse
{
	const char	  *src;
	int			   len;
	const char	  *part; /* url, header "X", body key "k" */
	SwTextEncoding enc;
	SwUrlPart	   url_part; /* SW_ENC_URL only */
} SwTextParse;

static const char hex_digits[] = "0123456789ABCDEF";

/* ------------------------------------------------------------------------
 * Encoders
 * ------------------------------------------------------------------------
 */

static inline void
append_percent(StringInfo buf, unsigned char c)
{
	appendStringInfoCharMacro(buf, '%');
	appendStringInfoCharMacro(buf, hex_digits[c >> 4]);
	appendStringInfoCharMacro(buf, hex_digits[c & 15]);
}

/*
 * RFC 3986: unreserved characters stay and every other byte is %XX, but "."
 * stays only in the host (keep_dots): after it a value's "." is %2E, which
 * the receiver decodes to the same text, so that the value can never be a
 * "." or ".." path segment.
 */
static void
append_url_encoded(StringInfo buf, const char *s, int len, bool keep_dots)
{
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (sw_ascii_alnum(c) || c == '-' || c == '_' || c == '~' || (c == '.' && keep_dots))
			appendStringInfoCharMacro(buf, (char) c);
		else
			append_percent(buf, c);
	}
}

/* WHATWG urlencoded serializer: space is '+', alnum and *-._ stay. */
void
sw_append_form_encoded(StringInfo buf, const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (sw_ascii_alnum(c) || c == '*' || c == '-' || c == '.' || c == '_')
			appendStringInfoCharMacro(buf, (char) c);
		else if (c == ' ')
			appendStringInfoCharMacro(buf, '+');
		else
			append_percent(buf, c);
	}
}

/* The JSON escape of a character that a JSON string cannot hold as is. */
static void
append_json_escape(StringInfo buf, unsigned char c)
{
	switch (c)
	{
		case '"':
			appendStringInfoString(buf, "\\\"");
			break;
		case '\\':
			appendStringInfoString(buf, "\\\\");
			break;
		case '\b':
			appendStringInfoString(buf, "\\b");
			break;
		case '\f':
			appendStringInfoString(buf, "\\f");
			break;
		case '\n':
			appendStringInfoString(buf, "\\n");
			break;
		case '\r':
			appendStringInfoString(buf, "\\r");
			break;
		case '\t':
			appendStringInfoString(buf, "\\t");
			break;
		default:
			appendStringInfo(buf, "\\u%04x", c);
			break;
	}
}

/* The inside of a JSON string: quote, backslash and control bytes escaped. */
static void
append_json_escaped(StringInfo buf, const char *s, int len)
{
	int run = 0;

	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		appendBinaryStringInfo(buf, s + run, i - run);
		run = i + 1;
		append_json_escape(buf, c);
	}
	appendBinaryStringInfo(buf, s + run, len - run);
}

static void
append_encoded(StringInfo buf, const char *s, int len, SwTextEncoding enc)
{
	switch (enc)
	{
		case SW_ENC_RAW:
			appendBinaryStringInfo(buf, s, len);
			break;
		case SW_ENC_URL:
		case SW_ENC_URL_HOST:
			append_url_encoded(buf, s, len, enc == SW_ENC_URL_HOST);
			break;
		case SW_ENC_JSON:
			append_json_escaped(buf, s, len);
			break;
		case SW_ENC_FORM:
			sw_append_form_encoded(buf, s, len);
			break;
	}
}

void
sw_append_json_string(StringInfo buf, const char *s, int len)
{
	appendStringInfoCharMacro(buf, '"');
	append_json_escaped(buf, s, len);
	appendStringInfoCharMacro(buf, '"');
}

/* ------------------------------------------------------------------------
 * Compact JSON output of jsonb values (the same spacing as our own JSON)
 * ------------------------------------------------------------------------
 */

static void append_json_container(StringInfo buf, JsonbContainer *c);

static void
append_json_value(StringInfo buf, const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			appendStringInfoString(buf, "null");
			break;
		case jbvString:
			sw_append_json_string(buf, v->val.string.val, v->val.string.len);
			break;
		case jbvNumeric:
			appendStringInfoString(buf, DatumGetCString(DirectFunctionCall1(
											numeric_out, NumericGetDatum(v->val.numeric))));
			break;
		case jbvBool:
			appendStringInfoString(buf, v->val.boolean ? "true" : "false");
			break;
		case jbvBinary:
			append_json_container(buf, v->val.binary.data);
			break;
		default:
			appendStringInfoString(buf, sw_jsonb_value_to_json(v));
			break;
	}
}

/* A comma unless we are right after an opening bracket or a key. */
static void
append_separator(StringInfo buf, int start)
{
	char last = buf->len > start ? buf->data[buf->len - 1] : '{';

	if (last != '{' && last != '[' && last != ':')
		appendStringInfoCharMacro(buf, ',');
}

/* One token of a jsonb iteration, as compact JSON; start is where the container began. */
static void
append_json_token(StringInfo buf, JsonbIteratorToken tok, JsonbValue *v, int start)
{
	switch (tok)
	{
		case WJB_BEGIN_OBJECT:
		case WJB_BEGIN_ARRAY:
			append_separator(buf, start);
			appendStringInfoCharMacro(buf, tok == WJB_BEGIN_OBJECT ? '{' : '[');
			break;
		case WJB_END_OBJECT:
		case WJB_END_ARRAY:
			appendStringInfoCharMacro(buf, tok == WJB_END_OBJECT ? '}' : ']');
			break;
		case WJB_KEY:
			append_separator(buf, start);
			append_json_value(buf, v);
			appendStringInfoCharMacro(buf, ':');
			break;
		case WJB_ELEM:
			append_separator(buf, start);
			append_json_value(buf, v);
			break;
		case WJB_VALUE:
			append_json_value(buf, v);
			break;
		default:
			break;
	}
}

static void
append_json_container(StringInfo buf, JsonbContainer *c)
{
	JsonbIterator	  *it;
	JsonbIteratorToken tok;
	JsonbValue		   v;
	int				   start = buf->len;

	if (JsonContainerIsScalar(c))
	{
		JsonbExtractScalar(c, &v);
		append_json_value(buf, &v);
		return;
	}
	it = JsonbIteratorInit(c);
	while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		append_json_token(buf, tok, &v, start);
}

/* A jsonb document, or {} when there is none. */
void
sw_append_jsonb_or_empty(StringInfo buf, Jsonb *doc)
{
	if (doc == NULL)
		appendStringInfoString(buf, "{}");
	else
		append_json_container(buf, &doc->root);
}

/* ------------------------------------------------------------------------
 * The JSON lexer, across versions
 * ------------------------------------------------------------------------
 */

JsonLexContext *
sw_make_lexer(const char *json, int len)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), true);
#else
	return makeJsonLexContextCstringLen(unconstify(char *, json), len, GetDatabaseEncoding(), true);
#endif
}

void
sw_free_lexer(JsonLexContext *lex)
{
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	if (lex->strval)
	{
		pfree(lex->strval->data);
		pfree(lex->strval);
	}
	pfree(lex);
#endif
}

typedef struct SwScalarCapture
{
	char		 *token;
	JsonTokenType type;
} SwScalarCapture;

static SW_JSON_ACTION
capture_scalar(void *state, char *token, JsonTokenType type)
{
	SwScalarCapture *cap = (SwScalarCapture *) state;

	cap->token = token;
	cap->type = type;
	SW_JSON_DONE;
}

/* The value of a JSON string literal (quotes included), or NULL. */
static char *
json_string_literal(const char *lit, int len)
{
	JsonLexContext	  *lex = sw_make_lexer(lit, len);
	JsonSemAction	   sem;
	SwScalarCapture	   cap = {NULL, JSON_TOKEN_INVALID};
	JsonParseErrorType rc;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &cap;
	sem.scalar = capture_scalar;
	rc = pg_parse_json(lex, &sem);
	sw_free_lexer(lex);
	return (rc == JSON_SUCCESS && cap.type == JSON_TOKEN_STRING) ? cap.token : NULL;
}

/* ------------------------------------------------------------------------
 * Template strings and placeholders
 * ------------------------------------------------------------------------
 */

static void placeholder_error(const SwTextParse *tp, int start, int end, const char *detail)
	pg_attribute_noreturn();

static void
placeholder_error(const SwTextParse *tp, int start, int end, const char *detail)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("invalid placeholder \"%s\" in %s",
						   pnstrdup(tp->src + start, end - start), tp->part),
					errdetail("%s", detail), errhint(PLACEHOLDER_HINT)));
}

/* attrs.c's lower-case message as a detail sentence. */
static char *
as_sentence(const char *msg)
{
	char *s = psprintf("%s.", msg);

	s[0] = pg_toupper((unsigned char) s[0]);
	return s;
}

static int
skip_blanks(const char *s, int len, int p)
{
	while (p < len && isspace((unsigned char) s[p]))
		p++;
	return p;
}

/* Where a bad placeholder most likely ends, for its message. */
static int
likely_placeholder_end(const SwTextParse *tp, int p)
{
	const char *close = memchr(tp->src + p, '}', tp->len - p);

	return close ? (int) (close - tp->src) + 1 : tp->len;
}

/* Fill the fallback from its JSON literal; false if it is not a scalar. */
static bool
set_fallback(const SwTextParse *tp, const char *lit, int len, SwSegment *seg)
{
	StringInfoData json;
	StringInfoData text;

	initStringInfo(&json);
	initStringInfo(&text);
	if (len > 0 && lit[0] == '"')
	{
		char *value = json_string_literal(lit, len);

		if (value == NULL)
			return false;
		sw_append_json_string(&json, value, strlen(value));
		append_encoded(&text, value, strlen(value), seg->enc);
	}
	else if ((len == 4 && strncmp(lit, "null", 4) == 0))
		appendStringInfoString(&json, "null"); /* null is missing: empty text */
	else if ((len == 4 && strncmp(lit, "true", 4) == 0) ||
			 (len == 5 && strncmp(lit, "false", 5) == 0) ||
			 (len > 0 && IsValidJsonNumber(lit, len)))
	{
		appendBinaryStringInfo(&json, lit, len);
		append_encoded(&text, lit, len, seg->enc);
	}
	else
		return false;
	seg->has_fallback = true;
	seg->fallback_json = json.data;
	seg->fallback_text = text.data;
	seg->fallback_text_len = text.len;
	return true;
}

/* Parse " fallback: <literal> }" from p (just after '|'); returns the end. */
static int
parse_fallback(const SwTextParse *tp, int start, int p, SwSegment *seg)
{
	const char *s = tp->src;
	int			len = tp->len;
	int			lit_start;
	int			lit_end;

	p = skip_blanks(s, len, p);
	if (len - p < 8 || strncmp(s + p, "fallback", 8) != 0)
		placeholder_error(tp, start, likely_placeholder_end(tp, p), DETAIL_BAD_FALLBACK);
	p = skip_blanks(s, len, p + 8);
	if (p == len || s[p] != ':')
		placeholder_error(tp, start, likely_placeholder_end(tp, p), DETAIL_BAD_FALLBACK);
	p = skip_blanks(s, len, p + 1);
	lit_start = p;
	if (p < len && s[p] == '"')
	{
		/* a JSON string may hold "}" and "|": find its closing quote */
		for (p++; p < len && s[p] != '"'; p++)
			if (s[p] == '\\')
				p++;
		if (p >= len)
			placeholder_error(tp, start, len, DETAIL_NOT_CLOSED);
		p++;
	}
	else
		while (p < len && s[p] != '}' && !isspace((unsigned char) s[p]))
			p++;
	lit_end = p;
	p = skip_blanks(s, len, p);
	if (p == len)
		placeholder_error(tp, start, len, DETAIL_NOT_CLOSED);
	if (s[p] != '}' || !set_fallback(tp, s + lit_start, lit_end - lit_start, seg))
		placeholder_error(tp, start, likely_placeholder_end(tp, p), DETAIL_BAD_FALLBACK);
	return p + 1;
}

/* Parse the placeholder that starts at src[start] == '{'; returns its end. */
static int
parse_placeholder(const SwTextParse *tp, int start, SwSegment *seg)
{
	const char *s = tp->src;
	int			p = start + 1;
	int			end;
	char	   *err;

	while (p < tp->len && s[p] != '}' && s[p] != '|' && s[p] != '{')
		p++;
	if (p == tp->len)
		placeholder_error(tp, start, p, DETAIL_NOT_CLOSED);
	if (s[p] == '{')
		placeholder_error(tp, start, p + 1,
						  "A placeholder cannot contain \"{\"; write {{ for a literal brace.");
	end = s[p] == '|' ? parse_fallback(tp, start, p + 1, seg) : p + 1;
	if (skip_blanks(s, p, start + 1) == p)
		placeholder_error(tp, start, end, "The placeholder names no attribute.");
	err = sw_attr_parse(s + start + 1, p - start - 1, &seg->path);
	if (err)
		placeholder_error(tp, start, end, as_sentence(err));
	return end;
}

static SwSegment *
add_segment(SwTemplateText *t, int *cap)
{
	if (t->nsegs == *cap)
	{
		*cap *= 2;
		t->segs = repalloc(t->segs, *cap * sizeof(SwSegment));
	}
	return memset(&t->segs[t->nsegs++], 0, sizeof(SwSegment));
}

/*
 * Follow a URL's literal text to where it leaves the host: the host starts
 * after the first "//" and ends at the next "/", "?" or "#".  Values cannot
 * add any of these (they are percent-encoded), and compile_url in render.c
 * refuses a URL that does not start with a literal http:// or https://, so
 * the literal text alone says where every placeholder is.
 */
static void
follow_url_part(SwTextParse *tp, const char *lit, int len)
{
	for (int i = 0; i < len && tp->url_part != SW_URL_AFTER_HOST; i++)
	{
		if (tp->url_part == SW_URL_SCHEME)
		{
			if (i > 0 && lit[i - 1] == '/' && lit[i] == '/')
				tp->url_part = SW_URL_HOST;
		}
		else if (lit[i] == '/' || lit[i] == '?' || lit[i] == '#')
			tp->url_part = SW_URL_AFTER_HOST;
	}
}

/* How the value of a placeholder starting here is encoded. */
static SwTextEncoding
value_encoding(const SwTextParse *tp)
{
	if (tp->enc == SW_ENC_URL && tp->url_part == SW_URL_HOST)
		return SW_ENC_URL_HOST;
	return tp->enc;
}

/* Literal text: as written in a URL, encoded everywhere else. */
static void
flush_literal(SwTextParse *tp, SwTemplateText *t, int *cap, StringInfo lit)
{
	SwSegment	  *seg;
	StringInfoData encoded;

	if (lit->len == 0)
		return;
	if (tp->enc == SW_ENC_URL)
		follow_url_part(tp, lit->data, lit->len);
	seg = add_segment(t, cap);
	initStringInfo(&encoded);
	append_encoded(&encoded, lit->data, lit->len, tp->enc == SW_ENC_URL ? SW_ENC_RAW : tp->enc);
	seg->literal = encoded.data;
	seg->literal_len = encoded.len;
	resetStringInfo(lit);
}

static void unmatched_brace_error(const SwTextParse *tp) pg_attribute_noreturn();

static void
unmatched_brace_error(const SwTextParse *tp)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unmatched \"}\" in %s", tp->part),
			 errdetail("The text is \"%s\".", pnstrdup(tp->src, tp->len)),
			 errhint("Write }} for a literal brace.")));
}

/* Compile src[0..len) into segments; part names it in messages. */
void
sw_compile_text(const char *src, int len, const char *part, SwTextEncoding enc, SwTemplateText *out)
{
	SwTextParse	   tp = {src, len, part, enc, SW_URL_SCHEME};
	StringInfoData lit;
	int			   cap = 4;
	int			   i = 0;

	initStringInfo(&lit);
	out->nsegs = 0;
	out->segs = palloc(cap * sizeof(SwSegment));
	while (i < len)
	{
		char c = src[i];

		if ((c == '{' || c == '}') && i + 1 < len && src[i + 1] == c)
		{
			appendStringInfoChar(&lit, c);
			i += 2;
		}
		else if (c == '{')
		{
			SwSegment *seg;

			flush_literal(&tp, out, &cap, &lit);
			seg = add_segment(out, &cap);
			seg->enc = value_encoding(&tp);
			i = parse_placeholder(&tp, i, seg);
		}
		else if (c == '}')
			unmatched_brace_error(&tp);
		else
			appendStringInfoChar(&lit, src[i++]);
	}
	flush_literal(&tp, out, &cap, &lit);
	pfree(lit.data);
}

bool
sw_text_has_placeholder(const SwTemplateText *t)
{
	for (int i = 0; i < t->nsegs; i++)
		if (t->segs[i].literal == NULL)
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Render
 * ------------------------------------------------------------------------
 */

/* A JSON null counts as missing: the fallback applies, text gets nothing. */
static bool
lookup_value(const SwRender *r, const SwSegment *seg, JsonbValue *v)
{
	return sw_attr_lookup(r->ctx, &seg->path, v) && v->type != jbvNull;
}

/* Strings as they are, other values as their JSON text. */
static void
append_value_text(SwRender *r, StringInfo buf, const JsonbValue *v, SwTextEncoding enc)
{
	if (v->type == jbvString)
	{
		append_encoded(buf, v->val.string.val, v->val.string.len, enc);
		return;
	}
	resetStringInfo(&r->scratch);
	append_json_value(&r->scratch, v);
	append_encoded(buf, r->scratch.data, r->scratch.len, enc);
}

void
sw_render_text(SwRender *r, StringInfo buf, const SwTemplateText *t)
{
	for (int i = 0; i < t->nsegs; i++)
	{
		const SwSegment *seg = &t->segs[i];
		JsonbValue		 v;

		if (buf->len > r->limit)
			return;
		if (seg->literal)
			appendBinaryStringInfo(buf, seg->literal, seg->literal_len);
		else if (lookup_value(r, seg, &v))
			append_value_text(r, buf, &v, seg->enc);
		else if (seg->has_fallback)
			appendBinaryStringInfo(buf, seg->fallback_text, seg->fallback_text_len);
	}
}

void
sw_render_whole_value(SwRender *r, StringInfo buf, const SwSegment *seg)
{
	JsonbValue v;

	if (lookup_value(r, seg, &v))
		append_json_value(buf, &v);
	else if (seg->has_fallback)
		appendStringInfoString(buf, seg->fallback_json);
	else
		appendStringInfoString(buf, "null");
}
