/*-------------------------------------------------------------------------
 *
 * render_internal.h
 *	  The compiled webhook template, shared by the three files that build
 *	  and render it: render.c (method, URL, headers; render.h's interface),
 *	  render_template.c (template strings: segments, encoders) and
 *	  render_body.c (the body).  Other files use render.h.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_RENDER_INTERNAL_H
#define SERIESWEB_RENDER_INTERNAL_H

#include "common/jsonapi.h"
#include "lib/stringinfo.h"

#include "render.h"

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

/*
 * Where a template's text goes, which decides how it is encoded.  In a URL
 * the literal text is kept as written and values are percent-encoded; in
 * the host "." stays (it separates labels), after it "." is %2E too, so a
 * value can never be a "." or ".." path segment.
 */
typedef enum SwTextEncoding
{
	SW_ENC_RAW,		 /* header value: as is */
	SW_ENC_URL,		 /* URL after the host (and the URL as a whole) */
	SW_ENC_URL_HOST, /* a URL's host and port */
	SW_ENC_JSON,	 /* inside a JSON string: escaped */
	SW_ENC_FORM		 /* application/x-www-form-urlencoded field */
} SwTextEncoding;

typedef enum SwBodyFormat
{
	SW_BODY_JSON,
	SW_BODY_FORM
} SwBodyFormat;

/* Literal text, or a placeholder when literal is NULL. */
typedef struct SwSegment
{
	char		  *literal; /* encoded for the template's destination */
	int			   literal_len;
	SwTextEncoding enc; /* a placeholder's: of its value and fallback_text */
	SwAttrPath	   path;
	bool		   has_fallback;
	char		  *fallback_text; /* inserted into text, encoded */
	int			   fallback_text_len;
	char		  *fallback_json; /* as a whole JSON value */
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
	char		  *url_path_shape;	/* see render.c's check_rendered_path */
	int			   nheaders;
	SwHeader	  *headers;
	SwBodyFormat   format;
	bool		   default_body;
	int			   npieces;
	SwBodyPiece	  *pieces;
	int			   nfields;
	SwFormField	  *fields;
};

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

/* An ASCII letter or digit, whatever the locale (encoders, header names). */
static inline bool
sw_ascii_alnum(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* render_template.c: encoders and JSON output */
extern void			   sw_append_form_encoded(StringInfo buf, const char *s, int len);
extern void			   sw_append_json_string(StringInfo buf, const char *s, int len);
extern void			   sw_append_jsonb_or_empty(StringInfo buf, Jsonb *doc);
extern JsonLexContext *sw_make_lexer(const char *json, int len);
extern void			   sw_free_lexer(JsonLexContext *lex);

/* render_template.c: template strings */
extern void sw_compile_text(const char *src, int len, const char *part, SwTextEncoding enc,
							SwTemplateText *out);
extern bool sw_text_has_placeholder(const SwTemplateText *t);
extern void sw_render_text(SwRender *r, StringInfo buf, const SwTemplateText *t);
extern void sw_render_whole_value(SwRender *r, StringInfo buf, const SwSegment *seg);

/* render_body.c */
extern void sw_compile_body(SwWebhookTemplate *t, const char *body_json);
extern void sw_render_pieces(SwRender *r, StringInfo buf, const SwBodyPiece *pieces, int npieces);
extern void sw_render_form(SwRender *r, StringInfo buf, const SwWebhookTemplate *t);
extern void sw_render_default_payload(const SwContext *ctx, int64 delivery_id, bool form,
									  StringInfo buf);

#endif /* SERIESWEB_RENDER_INTERNAL_H */
