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
 * A template string (the URL, a header value, a string of the body) becomes
 * a list of segments: literal text, already encoded for where it goes, and
 * placeholders (an attribute path from attrs.c, with an optional fallback).
 * The body becomes "pieces": runs of literal JSON, template strings, and
 * strings that are exactly one placeholder and so keep the attribute's JSON
 * type.  We parse the body's json text ourselves, with PostgreSQL's JSON
 * parser, because jsonb would lose the key order the user wrote.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "render.h"
#include "settings.h"

/*
 * The JSON parser's callbacks return an error code from PostgreSQL 16 on,
 * and its lexer constructor takes a caller-supplied struct from 17 on.
 */
#if PG_VERSION_NUM >= 160000
#define SW_JSON_ACTION JsonParseErrorType
#define SW_JSON_DONE return JSON_SUCCESS
#else
#define SW_JSON_ACTION void
#define SW_JSON_DONE return
#endif

#define PLACEHOLDER_HINT                                                                         \
	"Write {user.name}, or {user.name | fallback: \"text\"} for a default; write {{ and }} for " \
	"literal braces."
#define DETAIL_NOT_CLOSED "A placeholder that starts with \"{\" must end with \"}\"."
#define DETAIL_BAD_FALLBACK                                                                      \
	"After \"|\" write fallback: and one JSON value: a quoted string, a number, true, false or " \
	"null."

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

/* Where a template's text goes, which decides how it is encoded. */
typedef enum SwTextEncoding
{
	SW_ENC_RAW,	 /* header value: as is */
	SW_ENC_URL,	 /* URL: values percent-encoded, literal text as written */
	SW_ENC_JSON, /* inside a JSON string: escaped */
	SW_ENC_FORM	 /* application/x-www-form-urlencoded field */
} SwTextEncoding;

typedef enum SwBodyFormat
{
	SW_BODY_JSON,
	SW_BODY_FORM
} SwBodyFormat;

/* Literal text, or a placeholder when literal is NULL. */
typedef struct SwSegment
{
	char	  *literal; /* encoded for the template's destination */
	int		   literal_len;
	SwAttrPath path;
	bool	   has_fallback;
	char	  *fallback_text; /* inserted into text, encoded */
	int		   fallback_text_len;
	char	  *fallback_json; /* as a whole JSON value */
} SwSegment;

typedef struct SwTemplateText
{
	int		   nsegs;
	SwSegment *segs;
} SwTemplateText;

typedef enum SwPieceKind
{
	SW_PIECE_JSON,	 /* literal JSON text */
	SW_PIECE_STRING, /* a JSON string with placeholders */
	SW_PIECE_VALUE	 /* a string that is one placeholder: typed */
} SwPieceKind;

typedef struct SwBodyPiece
{
	SwPieceKind	   kind;
	char		  *json; /* SW_PIECE_JSON */
	int			   json_len;
	SwTemplateText text; /* the others (JSON-escaped literal text) */
} SwBodyPiece;

/* A top-level body key of a form-encoded body. */
typedef struct SwFormField
{
	char		  *key; /* form-encoded */
	bool		   is_string;
	SwTemplateText text;		/* is_string: form-encoded template */
	int			   first_piece; /* otherwise: the value's JSON pieces */
	int			   npieces;
} SwFormField;

typedef struct SwHeader
{
	char		  *name;
	SwTemplateText value; /* raw */
} SwHeader;

struct SwWebhookTemplate
{
	const char	  *method;
	SwTemplateText url;
	int			   url_host_offset; /* > 0 when the host has a placeholder */
	int			   nheaders;
	SwHeader	  *headers;
	SwBodyFormat   format;
	bool		   default_body;
	int			   npieces;
	SwBodyPiece	  *pieces;
	int			   nfields;
	SwFormField	  *fields;
};

/* One template string being compiled, and what to call it in messages. */
typedef struct SwTextParse
{
	const char	  *src;
	int			   len;
	const char	  *part; /* url, header "X", body key "k" */
	SwTextEncoding enc;
} SwTextParse;

/* Body compilation state, shared by the JSON parser callbacks. */
typedef struct SwBodyParse
{
	SwWebhookTemplate *tmpl;
	const char		  *body_text; /* for messages */
	bool			   form;
	int				   depth; /* 1 inside the top-level object */
	bool			   need_comma;
	StringInfoData	   pending;	  /* literal JSON not yet made a piece */
	StringInfoData	   path;	  /* where we are, for messages: order.items[0] */
	int				  *path_lens; /* per depth: path length before the member */
	int				  *indexes;	  /* per depth: next array index */
	int				   maxdepth;
	int				   maxpieces;
	int				   maxfields;
} SwBodyParse;

/*
 * Render state: the context, a buffer for the JSON text of values, and the
 * length past which the text being rendered is refused anyway, so rendering
 * stops there instead of building a huge string (or failing an allocation).
 */
typedef struct SwRender
{
	const SwContext *ctx;
	StringInfoData	 scratch;
	int				 limit;
} SwRender;

static const char hex_digits[] = "0123456789ABCDEF";

/* ------------------------------------------------------------------------
 * Encoders
 * ------------------------------------------------------------------------
 */

static inline bool
ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static inline void
append_percent(StringInfo buf, unsigned char c)
{
	appendStringInfoCharMacro(buf, '%');
	appendStringInfoCharMacro(buf, hex_digits[c >> 4]);
	appendStringInfoCharMacro(buf, hex_digits[c & 15]);
}

/* RFC 3986: unreserved characters stay, every other byte is %XX. */
static void
append_url_encoded(StringInfo buf, const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (ascii_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~')
			appendStringInfoCharMacro(buf, (char) c);
		else
			append_percent(buf, c);
	}
}

/* WHATWG urlencoded serializer: space is '+', alnum and *-._ stay. */
static void
append_form_encoded(StringInfo buf, const char *s, int len)
{
	for (int i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (ascii_alnum(c) || c == '*' || c == '-' || c == '.' || c == '_')
			appendStringInfoCharMacro(buf, (char) c);
		else if (c == ' ')
			appendStringInfoCharMacro(buf, '+');
		else
			append_percent(buf, c);
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
			append_url_encoded(buf, s, len);
			break;
		case SW_ENC_JSON:
			append_json_escaped(buf, s, len);
			break;
		case SW_ENC_FORM:
			append_form_encoded(buf, s, len);
			break;
	}
}

static void
append_json_string(StringInfo buf, const char *s, int len)
{
	appendStringInfoCharMacro(buf, '"');
	append_json_escaped(buf, s, len);
	appendStringInfoCharMacro(buf, '"');
}

/* A C string as a JSON string, or null. */
static void
append_json_cstring(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		append_json_string(buf, s, strlen(s));
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
			append_json_string(buf, v->val.string.val, v->val.string.len);
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
				append_json_value(buf, &v);
				appendStringInfoCharMacro(buf, ':');
				break;
			case WJB_ELEM:
				append_separator(buf, start);
				append_json_value(buf, &v);
				break;
			case WJB_VALUE:
				append_json_value(buf, &v);
				break;
			default:
				break;
		}
	}
}

/* A jsonb document, or {} when there is none. */
static void
append_jsonb_or_empty(StringInfo buf, Jsonb *doc)
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

static JsonLexContext *
make_lexer(const char *json, int len)
{
#if PG_VERSION_NUM >= 170000
	return makeJsonLexContextCstringLen(NULL, json, len, GetDatabaseEncoding(), true);
#else
	return makeJsonLexContextCstringLen(unconstify(char *, json), len, GetDatabaseEncoding(), true);
#endif
}

static void
free_lexer(JsonLexContext *lex)
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
	JsonLexContext	  *lex = make_lexer(lit, len);
	JsonSemAction	   sem;
	SwScalarCapture	   cap = {NULL, JSON_TOKEN_INVALID};
	JsonParseErrorType rc;

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &cap;
	sem.scalar = capture_scalar;
	rc = pg_parse_json(lex, &sem);
	free_lexer(lex);
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
guess_end(const SwTextParse *tp, int p)
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
		append_json_string(&json, value, strlen(value));
		append_encoded(&text, value, strlen(value), tp->enc);
	}
	else if ((len == 4 && strncmp(lit, "null", 4) == 0))
		appendStringInfoString(&json, "null"); /* null is missing: empty text */
	else if ((len == 4 && strncmp(lit, "true", 4) == 0) ||
			 (len == 5 && strncmp(lit, "false", 5) == 0) ||
			 (len > 0 && IsValidJsonNumber(lit, len)))
	{
		appendBinaryStringInfo(&json, lit, len);
		append_encoded(&text, lit, len, tp->enc);
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
		placeholder_error(tp, start, guess_end(tp, p), DETAIL_BAD_FALLBACK);
	p = skip_blanks(s, len, p + 8);
	if (p == len || s[p] != ':')
		placeholder_error(tp, start, guess_end(tp, p), DETAIL_BAD_FALLBACK);
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
		placeholder_error(tp, start, guess_end(tp, p), DETAIL_BAD_FALLBACK);
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

/* Literal text: as written in a URL, encoded everywhere else. */
static void
flush_literal(const SwTextParse *tp, SwTemplateText *t, int *cap, StringInfo lit)
{
	SwSegment	  *seg;
	StringInfoData encoded;

	if (lit->len == 0)
		return;
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
static void
compile_text(const char *src, int len, const char *part, SwTextEncoding enc, SwTemplateText *out)
{
	SwTextParse	   tp = {src, len, part, enc};
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
			flush_literal(&tp, out, &cap, &lit);
			i = parse_placeholder(&tp, i, add_segment(out, &cap));
		}
		else if (c == '}')
			unmatched_brace_error(&tp);
		else
			appendStringInfoChar(&lit, src[i++]);
	}
	flush_literal(&tp, out, &cap, &lit);
	pfree(lit.data);
}

static bool
text_has_placeholder(const SwTemplateText *t)
{
	for (int i = 0; i < t->nsegs; i++)
		if (t->segs[i].literal == NULL)
			return true;
	return false;
}

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
 * "/", "@" or ":".  Literal text must have no blank or control character.
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
clipped(const char *s, int maxlen)
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
						errmsg("webhook url \"%s\" is longer than %d bytes", clipped(url, 64),
							   SW_MAX_URL_LEN),
						errdetail("Its text outside placeholders is %d bytes long.", len),
						errhint("Send long values in the body or in a header.")));
}

static void
compile_url(SwWebhookTemplate *t, const char *url)
{
	char  *shape;
	int	   off;
	size_t auth_len;

	compile_text(url, strlen(url), "url", SW_ENC_URL, &t->url);
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
	return ascii_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static void
check_header_name(const char *name)
{
	static const char *const reserved[] = {"Content-Length", "Host", "Transfer-Encoding",
										   "Connection"};

	if (strlen(name) > SW_MAX_HEADER_LEN)
		ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						errmsg("header name \"%s\" is longer than %d bytes", clipped(name, 64),
							   SW_MAX_HEADER_LEN),
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

	if (text_has_placeholder(value))
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
	if (v->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("header \"%s\" has the non-string value %s", name,
							   sw_jsonb_value_to_json(v)),
						errhint("Write header values as JSON strings.")));
	raw = pnstrdup(v->val.string.val, v->val.string.len);
	if (has_line_break(v->val.string.val, v->val.string.len))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("header \"%s\" value contains CR, LF or NUL", name),
						errhint("Write header values on one line.")));
	h->name = name;
	compile_text(raw, v->val.string.len, psprintf("header \"%s\"", name), SW_ENC_RAW, &h->value);
	check_header_value(name, &h->value);
	if (pg_strcasecmp(name, "Content-Type") == 0)
	{
		compile_content_type(t, name, raw, &h->value);
		*have_type = true;
	}
	t->nheaders++;
}

static void
compile_headers(SwWebhookTemplate *t, Jsonb *headers)
{
	JsonbIterator	  *it;
	JsonbIteratorToken tok;
	JsonbValue		   key;
	JsonbValue		   value;
	bool			   have_type = false;

	if (!JB_ROOT_IS_OBJECT(headers))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("webhook headers are not a JSON object: %s",
							   JsonbToCString(NULL, &headers->root, VARSIZE(headers))),
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
						errmsg("webhook headers %s have no Content-Type",
							   JsonbToCString(NULL, &headers->root, VARSIZE(headers))),
						errhint("Add \"Content-Type\": \"application/json\" (or "
								"\"application/x-www-form-urlencoded\").")));
}

/* ------------------------------------------------------------------------
 * Body: JSON parser callbacks that turn the body into pieces
 * ------------------------------------------------------------------------
 */

static SwBodyPiece *
add_piece(SwBodyParse *st)
{
	SwWebhookTemplate *t = st->tmpl;

	if (t->npieces == st->maxpieces)
	{
		st->maxpieces *= 2;
		t->pieces = repalloc(t->pieces, st->maxpieces * sizeof(SwBodyPiece));
	}
	return memset(&t->pieces[t->npieces++], 0, sizeof(SwBodyPiece));
}

static void
flush_pending(SwBodyParse *st)
{
	SwBodyPiece *piece;

	if (st->pending.len == 0)
		return;
	piece = add_piece(st);
	piece->kind = SW_PIECE_JSON;
	piece->json = pnstrdup(st->pending.data, st->pending.len);
	piece->json_len = st->pending.len;
	resetStringInfo(&st->pending);
}

/* The top-level key of a form body: its fields, not JSON, are the output. */
static inline bool
at_form_top(const SwBodyParse *st)
{
	return st->form && st->depth == 1;
}

static SwFormField *
current_field(SwBodyParse *st)
{
	return &st->tmpl->fields[st->tmpl->nfields - 1];
}

static void
not_an_object(const SwBodyParse *st)
{
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("webhook body is not a JSON object: %s", st->body_text),
					errhint("Write the body as {\"key\": \"value\", ...}, or leave it NULL to send "
							"the default payload.")));
}

/* Enter an object or array: one more level of path and array index. */
static void
push_level(SwBodyParse *st)
{
	st->depth++;
	if (st->depth == st->maxdepth)
	{
		st->maxdepth *= 2;
		st->path_lens = repalloc(st->path_lens, st->maxdepth * sizeof(int));
		st->indexes = repalloc(st->indexes, st->maxdepth * sizeof(int));
	}
	st->indexes[st->depth] = 0;
	st->need_comma = false;
}

static SW_JSON_ACTION
body_object_start(void *state)
{
	SwBodyParse *st = (SwBodyParse *) state;

	if (!(st->form && st->depth == 0))
		appendStringInfoChar(&st->pending, '{');
	push_level(st);
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_object_end(void *state)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->depth--;
	if (!(st->form && st->depth == 0))
		appendStringInfoChar(&st->pending, '}');
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_array_start(void *state)
{
	SwBodyParse *st = (SwBodyParse *) state;

	if (st->depth == 0)
		not_an_object(st);
	appendStringInfoChar(&st->pending, '[');
	push_level(st);
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_array_end(void *state)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->depth--;
	appendStringInfoChar(&st->pending, ']');
	SW_JSON_DONE;
}

static void
start_form_field(SwBodyParse *st, const char *key)
{
	SwWebhookTemplate *t = st->tmpl;
	SwFormField		  *f;
	StringInfoData	   enc;

	if (t->nfields == st->maxfields)
	{
		st->maxfields *= 2;
		t->fields = repalloc(t->fields, st->maxfields * sizeof(SwFormField));
	}
	f = memset(&t->fields[t->nfields++], 0, sizeof(SwFormField));
	initStringInfo(&enc);
	append_form_encoded(&enc, key, strlen(key));
	f->key = enc.data;
	flush_pending(st);
	f->first_piece = t->npieces;
}

static SW_JSON_ACTION
body_field_start(void *state, char *fname, bool isnull)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->path_lens[st->depth] = st->path.len;
	if (st->path.len > 0)
		appendStringInfoChar(&st->path, '.');
	appendStringInfoString(&st->path, fname);
	if (at_form_top(st))
		start_form_field(st, fname);
	else
	{
		if (st->need_comma)
			appendStringInfoChar(&st->pending, ',');
		append_json_string(&st->pending, fname, strlen(fname));
		appendStringInfoChar(&st->pending, ':');
	}
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_field_end(void *state, char *fname, bool isnull)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->path.len = st->path_lens[st->depth];
	st->path.data[st->path.len] = '\0';
	if (at_form_top(st))
	{
		flush_pending(st);
		current_field(st)->npieces = st->tmpl->npieces - current_field(st)->first_piece;
	}
	st->need_comma = true;
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_element_start(void *state, bool isnull)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->path_lens[st->depth] = st->path.len;
	appendStringInfo(&st->path, "[%d]", st->indexes[st->depth]++);
	if (st->need_comma)
		appendStringInfoChar(&st->pending, ',');
	SW_JSON_DONE;
}

static SW_JSON_ACTION
body_element_end(void *state, bool isnull)
{
	SwBodyParse *st = (SwBodyParse *) state;

	st->path.len = st->path_lens[st->depth];
	st->path.data[st->path.len] = '\0';
	st->need_comma = true;
	SW_JSON_DONE;
}

/* A string of the body: literal JSON, a template string, or a typed value. */
static void
body_string(SwBodyParse *st, const char *value, const char *part)
{
	SwTemplateText text;
	SwBodyPiece	  *piece;

	compile_text(value, strlen(value), part, SW_ENC_JSON, &text);
	if (!text_has_placeholder(&text))
	{
		appendStringInfoChar(&st->pending, '"');
		for (int i = 0; i < text.nsegs; i++)
			appendBinaryStringInfo(&st->pending, text.segs[i].literal, text.segs[i].literal_len);
		appendStringInfoChar(&st->pending, '"');
		return;
	}
	flush_pending(st);
	piece = add_piece(st);
	piece->kind = text.nsegs == 1 ? SW_PIECE_VALUE : SW_PIECE_STRING;
	piece->text = text;
}

static SW_JSON_ACTION
body_scalar(void *state, char *token, JsonTokenType type)
{
	SwBodyParse *st = (SwBodyParse *) state;
	char		*part;

	if (st->depth == 0)
		not_an_object(st);
	if (type != JSON_TOKEN_STRING)
	{
		appendStringInfoString(&st->pending, token);
		SW_JSON_DONE;
	}
	part = psprintf("body key \"%s\"", st->path.data);
	if (at_form_top(st))
	{
		compile_text(token, strlen(token), part, SW_ENC_FORM, &current_field(st)->text);
		current_field(st)->is_string = true;
	}
	else
		body_string(st, token, part);
	SW_JSON_DONE;
}

static void
compile_body(SwWebhookTemplate *t, const char *body_json)
{
	SwBodyParse		   st;
	JsonSemAction	   sem;
	JsonLexContext	  *lex;
	JsonParseErrorType rc;

	memset(&st, 0, sizeof(st));
	st.tmpl = t;
	st.body_text = body_json;
	st.form = t->format == SW_BODY_FORM;
	initStringInfo(&st.pending);
	initStringInfo(&st.path);
	st.maxdepth = 8;
	st.path_lens = palloc(st.maxdepth * sizeof(int));
	st.indexes = palloc(st.maxdepth * sizeof(int));
	st.maxpieces = st.maxfields = 8;
	t->pieces = palloc(st.maxpieces * sizeof(SwBodyPiece));
	t->fields = palloc(st.maxfields * sizeof(SwFormField));

	memset(&sem, 0, sizeof(sem));
	sem.semstate = &st;
	sem.object_start = body_object_start;
	sem.object_end = body_object_end;
	sem.array_start = body_array_start;
	sem.array_end = body_array_end;
	sem.object_field_start = body_field_start;
	sem.object_field_end = body_field_end;
	sem.array_element_start = body_element_start;
	sem.array_element_end = body_element_end;
	sem.scalar = body_scalar;

	lex = make_lexer(body_json, strlen(body_json));
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("cannot parse webhook body %s", body_json),
			 errdetail("%s", json_errdetail(rc, lex)),
			 errhint(
				 "Write the body as a JSON object whose strings PostgreSQL can read as text.")));
	free_lexer(lex);
	flush_pending(&st);
	pfree(st.pending.data);
	pfree(st.path.data);
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
		compile_body(t, body_json);
	else
		t->default_body = true;
	return t;
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

static void
render_text(SwRender *r, StringInfo buf, const SwTemplateText *t, SwTextEncoding enc)
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
			append_value_text(r, buf, &v, enc);
		else if (seg->has_fallback)
			appendBinaryStringInfo(buf, seg->fallback_text, seg->fallback_text_len);
	}
}

static void
render_whole_value(SwRender *r, StringInfo buf, const SwSegment *seg)
{
	JsonbValue v;

	if (lookup_value(r, seg, &v))
		append_json_value(buf, &v);
	else if (seg->has_fallback)
		appendStringInfoString(buf, seg->fallback_json);
	else
		appendStringInfoString(buf, "null");
}

static void
render_pieces(SwRender *r, StringInfo buf, const SwBodyPiece *pieces, int npieces)
{
	for (int i = 0; i < npieces; i++)
	{
		const SwBodyPiece *p = &pieces[i];

		if (buf->len > r->limit)
			return;
		switch (p->kind)
		{
			case SW_PIECE_JSON:
				appendBinaryStringInfo(buf, p->json, p->json_len);
				break;
			case SW_PIECE_STRING:
				appendStringInfoCharMacro(buf, '"');
				render_text(r, buf, &p->text, SW_ENC_JSON);
				appendStringInfoCharMacro(buf, '"');
				break;
			case SW_PIECE_VALUE:
				render_whole_value(r, buf, &p->text.segs[0]);
				break;
		}
	}
}

static void
render_form(SwRender *r, StringInfo buf, const SwWebhookTemplate *t)
{
	StringInfoData json;

	initStringInfo(&json);
	for (int i = 0; i < t->nfields; i++)
	{
		const SwFormField *f = &t->fields[i];

		if (buf->len > r->limit)
			break;
		if (i > 0)
			appendStringInfoChar(buf, '&');
		appendStringInfoString(buf, f->key);
		appendStringInfoChar(buf, '=');
		if (f->is_string)
			render_text(r, buf, &f->text, SW_ENC_FORM);
		else
		{
			resetStringInfo(&json);
			render_pieces(r, &json, t->pieces + f->first_piece, f->npieces);
			append_form_encoded(buf, json.data, json.len);
		}
	}
	pfree(json.data);
}

/* One top-level member of the default payload, as JSON or as a form field. */
static void
put_member(StringInfo buf, bool form, const char *key, StringInfo value)
{
	if (form)
	{
		if (buf->len > 0)
			appendStringInfoChar(buf, '&');
		append_form_encoded(buf, key, strlen(key));
		appendStringInfoChar(buf, '=');
		append_form_encoded(buf, value->data, value->len);
	}
	else
	{
		appendStringInfoChar(buf, buf->len > 1 ? ',' : '{');
		append_json_cstring(buf, key);
		appendStringInfoChar(buf, ':');
		appendBinaryStringInfo(buf, value->data, value->len);
	}
	resetStringInfo(value);
}

static void
append_event(StringInfo m, const SwContext *ctx)
{
	appendStringInfoString(m, "{\"id\":");
	if (ctx->event_id != 0)
		appendStringInfo(m, INT64_FORMAT, ctx->event_id);
	else
		appendStringInfoString(m, "null");
	appendStringInfoString(m, ",\"name\":");
	append_json_cstring(m, ctx->event_name);
	appendStringInfoString(m, ",\"occurred_at\":");
	if (ctx->event_name != NULL) /* as attrs.c: no event, no time */
	{
		char ts[MAXDATELEN + 1];

		JsonEncodeDateTime(ts, TimestampTzGetDatum(ctx->event_occurred_at), TIMESTAMPTZOID, NULL);
		append_json_cstring(m, ts);
	}
	else
		appendStringInfoString(m, "null");
	appendStringInfoString(m, ",\"properties\":");
	append_jsonb_or_empty(m, ctx->event_props);
	appendStringInfoChar(m, '}');
}

static void
append_user(StringInfo m, const SwContext *ctx)
{
	appendStringInfoString(m, "{\"id\":");
	append_json_cstring(m, ctx->user_id);
	appendStringInfoString(m, ",\"email\":");
	append_json_cstring(m, ctx->user_email);
	appendStringInfoString(m, ",\"name\":");
	append_json_cstring(m, ctx->user_name);
	appendStringInfoString(m, ",\"attributes\":");
	append_jsonb_or_empty(m, ctx->user_attrs);
	appendStringInfoChar(m, '}');
}

static void
append_company(StringInfo m, const SwContext *ctx)
{
	if (ctx->company_id == NULL)
	{
		appendStringInfoString(m, "null");
		return;
	}
	appendStringInfoString(m, "{\"id\":");
	append_json_cstring(m, ctx->company_id);
	appendStringInfoString(m, ",\"name\":");
	append_json_cstring(m, ctx->company_name);
	appendStringInfoString(m, ",\"attributes\":");
	append_jsonb_or_empty(m, ctx->company_attrs);
	appendStringInfoChar(m, '}');
}

/* {"id": <id>, "<label>": <text or null>}, for the series and the block. */
static void
append_id_label(StringInfo m, int32 id, const char *label, const char *value)
{
	appendStringInfo(m, "{\"id\":%d,\"%s\":", id, label);
	append_json_cstring(m, value);
	appendStringInfoChar(m, '}');
}

static void
render_default_payload(const SwContext *ctx, int64 delivery_id, bool form, StringInfo buf)
{
	StringInfoData m;

	initStringInfo(&m);
	appendStringInfo(&m, INT64_FORMAT, delivery_id);
	put_member(buf, form, "delivery_id", &m);
	append_id_label(&m, ctx->series_id, "name", ctx->series_name);
	put_member(buf, form, "series", &m);
	append_id_label(&m, ctx->block_id, "title", ctx->block_title);
	put_member(buf, form, "block", &m);
	append_user(&m, ctx);
	put_member(buf, form, "user", &m);
	append_company(&m, ctx);
	put_member(buf, form, "company", &m);
	append_event(&m, ctx);
	put_member(buf, form, "event", &m);
	if (!form)
		appendStringInfoChar(buf, '}');
	pfree(m.data);
}

static char *
render_url(SwRender *r, const SwWebhookTemplate *t, SwRenderedRequest *out)
{
	StringInfoData url;

	initStringInfo(&url);
	render_text(r, &url, &t->url, SW_ENC_URL);
	if (url.len > SW_MAX_URL_LEN)
		return psprintf("rendered url \"%s\" is longer than %d bytes", clipped(url.data, 64),
						SW_MAX_URL_LEN);
	out->url = url.data;
	/* strchr finds the terminating NUL too: nothing after the scheme */
	if (t->url_host_offset > 0 && strchr("/?#:", url.data[t->url_host_offset]) != NULL)
		return psprintf("url \"%s\" has an empty host after rendering", url.data);
	return NULL;
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
		render_text(r, &line, &h->value, SW_ENC_RAW);
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
		render_default_payload(ctx, delivery_id, tmpl->format == SW_BODY_FORM, &body);
	else if (tmpl->format == SW_BODY_FORM)
		render_form(&r, &body, tmpl);
	else
		render_pieces(&r, &body, tmpl->pieces, tmpl->npieces);
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
