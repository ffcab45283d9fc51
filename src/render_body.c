/*-------------------------------------------------------------------------
 *
 * render_body.c
 *	  Webhook bodies: compile a block's JSON body once, then render it per
 *	  delivery, as JSON or form-encoded; or render the default payload.
 *
 * The body becomes "pieces": runs of literal JSON, template strings
 * (render_template.c), and strings that are exactly one placeholder and so keep
 * the attribute's JSON type.  We parse the body's json text ourselves, with
 * PostgreSQL's JSON parser, because jsonb would lose the key order the user
 * wrote.  In a form-encoded body each top-level key is a field: a string
 * value is a form-encoded template string, any other value its rendered
 * JSON, form-encoded.  A block without a body sends the default payload
 * (delivery id, series, block, user, company, event).  render.c calls this
 * file through render_internal.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "lib/stringinfo.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"

#include "render_internal.h"

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
	sw_append_form_encoded(&enc, key, strlen(key));
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
		sw_append_json_string(&st->pending, fname, strlen(fname));
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

	sw_compile_text(value, strlen(value), part, SW_ENC_JSON, &text);
	if (!sw_text_has_placeholder(&text))
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
		sw_compile_text(token, strlen(token), part, SW_ENC_FORM, &current_field(st)->text);
		current_field(st)->is_string = true;
	}
	else
		body_string(st, token, part);
	SW_JSON_DONE;
}

/* The parse state of a body, with room for 8 levels, pieces and fields to start. */
static void
init_body_parse(SwBodyParse *st, SwWebhookTemplate *t, const char *body_json)
{
	memset(st, 0, sizeof(*st));
	st->tmpl = t;
	st->body_text = body_json;
	st->form = t->format == SW_BODY_FORM;
	initStringInfo(&st->pending);
	initStringInfo(&st->path);
	st->maxdepth = 8;
	st->path_lens = palloc(st->maxdepth * sizeof(int));
	st->indexes = palloc(st->maxdepth * sizeof(int));
	st->maxpieces = st->maxfields = 8;
	t->pieces = palloc(st->maxpieces * sizeof(SwBodyPiece));
	t->fields = palloc(st->maxfields * sizeof(SwFormField));
}

/* The JSON parser's callbacks that compile the body into st. */
static void
init_body_callbacks(JsonSemAction *sem, SwBodyParse *st)
{
	memset(sem, 0, sizeof(*sem));
	sem->semstate = st;
	sem->object_start = body_object_start;
	sem->object_end = body_object_end;
	sem->array_start = body_array_start;
	sem->array_end = body_array_end;
	sem->object_field_start = body_field_start;
	sem->object_field_end = body_field_end;
	sem->array_element_start = body_element_start;
	sem->array_element_end = body_element_end;
	sem->scalar = body_scalar;
}

void
sw_compile_body(SwWebhookTemplate *t, const char *body_json)
{
	SwBodyParse		   st;
	JsonSemAction	   sem;
	JsonLexContext	  *lex;
	JsonParseErrorType rc;

	init_body_parse(&st, t, body_json);
	init_body_callbacks(&sem, &st);
	lex = sw_make_lexer(body_json, strlen(body_json));
	rc = pg_parse_json(lex, &sem);
	if (rc != JSON_SUCCESS)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("cannot parse webhook body %s", body_json),
			 errdetail("%s", json_errdetail(rc, lex)),
			 errhint(
				 "Write the body as a JSON object whose strings PostgreSQL can read as text.")));
	sw_free_lexer(lex);
	flush_pending(&st);
	pfree(st.pending.data);
	pfree(st.path.data);
}

/* ------------------------------------------------------------------------
 * Render
 * ------------------------------------------------------------------------
 */

void
sw_render_pieces(SwRender *r, StringInfo buf, const SwBodyPiece *pieces, int npieces)
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
				sw_render_text(r, buf, &p->text);
				appendStringInfoCharMacro(buf, '"');
				break;
			case SW_PIECE_VALUE:
				sw_render_whole_value(r, buf, &p->text.segs[0]);
				break;
		}
	}
}

void
sw_render_form(SwRender *r, StringInfo buf, const SwWebhookTemplate *t)
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
			sw_render_text(r, buf, &f->text);
		else
		{
			resetStringInfo(&json);
			sw_render_pieces(r, &json, t->pieces + f->first_piece, f->npieces);
			sw_append_form_encoded(buf, json.data, json.len);
		}
	}
	pfree(json.data);
}

/* ------------------------------------------------------------------------
 * The default payload
 * ------------------------------------------------------------------------
 */

/* A C string as a JSON string, or null. */
static void
append_json_cstring(StringInfo buf, const char *s)
{
	if (s == NULL)
		appendStringInfoString(buf, "null");
	else
		sw_append_json_string(buf, s, strlen(s));
}

/* One top-level member of the default payload, as JSON or as a form field. */
static void
append_payload_member(StringInfo buf, bool form, const char *key, StringInfo value)
{
	if (form)
	{
		if (buf->len > 0)
			appendStringInfoChar(buf, '&');
		sw_append_form_encoded(buf, key, strlen(key));
		appendStringInfoChar(buf, '=');
		sw_append_form_encoded(buf, value->data, value->len);
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
	sw_append_jsonb_or_empty(m, ctx->event_props);
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
	sw_append_jsonb_or_empty(m, ctx->user_attrs);
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
	sw_append_jsonb_or_empty(m, ctx->company_attrs);
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

void
sw_render_default_payload(const SwContext *ctx, int64 delivery_id, bool form, StringInfo buf)
{
	StringInfoData m;

	initStringInfo(&m);
	appendStringInfo(&m, INT64_FORMAT, delivery_id);
	append_payload_member(buf, form, "delivery_id", &m);
	append_id_label(&m, ctx->series_id, "name", ctx->series_name);
	append_payload_member(buf, form, "series", &m);
	append_id_label(&m, ctx->block_id, "title", ctx->block_title);
	append_payload_member(buf, form, "block", &m);
	append_user(&m, ctx);
	append_payload_member(buf, form, "user", &m);
	append_company(&m, ctx);
	append_payload_member(buf, form, "company", &m);
	append_event(&m, ctx);
	append_payload_member(buf, form, "event", &m);
	if (!form)
		appendStringInfoChar(buf, '}');
	pfree(m.data);
}
