/*-------------------------------------------------------------------------
 *
 * attrs.c
 *	  Parse attribute paths and resolve them against a user/company/event
 *	  context.  See attrs.h for the rules; filter.c and render.c are the
 *	  callers.  The context is built from JSON by the SQL-callable test
 *	  functions, and its user part from a result row (plans.h) by the
 *	  matcher and test_webhook.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <ctype.h>

#include "attrs.h"
#include "catalog/pg_type.h"
#include "plans.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/date.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

/* int64_to_numeric is exported from PostgreSQL 14, strtoi64 from 15. */
#if PG_VERSION_NUM < 140000
#define int64_to_numeric(v) DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(v)))
#endif
#if PG_VERSION_NUM < 150000
#define strtoi64(str, endptr, base) ((int64) strtoll(str, endptr, base))
#endif

static const char *const root_names[] = {"user", "company", "event", "series", "block"};

static bool
key_char_ok(unsigned char c)
{
	/* Anything printable that cannot be confused with template syntax. */
	return c >= 0x80 || isalnum(c) || c == '_' || c == '-' || c == '$' || c == ':' || c == '@' ||
		   c == '#';
}

/* Split "a.b.c" (already trimmed) into keys; NULL on success. */
static char *
split_keys(const char *text, int len, SwAttrPath *path)
{
	int start = 0;
	int cap = 4;

	path->keys = palloc(cap * sizeof(char *));
	path->nkeys = 0;
	for (int i = 0; i <= len; i++)
	{
		if (i < len && text[i] != '.')
		{
			/* a control character would be invisible in the message: its code */
			if (!key_char_ok((unsigned char) text[i]) && iscntrl((unsigned char) text[i]))
				return psprintf("attribute \"%s\" contains the control character 0x%02x",
								path->text, (unsigned char) text[i]);
			if (!key_char_ok((unsigned char) text[i]))
				return psprintf("attribute \"%s\" contains the character \"%c\"", path->text,
								text[i]);
			continue;
		}
		if (i == start)
			return psprintf("attribute \"%s\" has an empty name part", path->text);
		if (path->nkeys == cap)
		{
			cap *= 2;
			path->keys = repalloc(path->keys, cap * sizeof(char *));
		}
		path->keys[path->nkeys++] = pnstrdup(text + start, i - start);
		start = i + 1;
	}
	return NULL;
}

/* The index of the root named name in root_names, or -1. */
static int
root_index(const char *name)
{
	for (int root = 0; root < lengthof(root_names); root++)
		if (strcmp(name, root_names[root]) == 0)
			return root;
	return -1;
}

/* Series and blocks have only an id and a label (a name, a title). */
static char *
check_series_or_block_field(const SwAttrPath *path)
{
	const char *label = path->root == SW_ROOT_SERIES ? "name" : "title";

	if (path->nkeys != 1 || (strcmp(path->keys[0], "id") != 0 && strcmp(path->keys[0], label) != 0))
		return psprintf("attribute \"%s\" is unknown (%s has only id and %s)", path->text,
						root_names[path->root], label);
	return NULL;
}

char *
sw_attr_parse(const char *text, int len, SwAttrPath *path)
{
	char *err;
	int	  root;

	while (len > 0 && isspace((unsigned char) *text))
		text++, len--;
	while (len > 0 && isspace((unsigned char) text[len - 1]))
		len--;
	path->text = pnstrdup(text, len);
	if (len == 0)
		return pstrdup("attribute name is empty");

	err = split_keys(text, len, path);
	if (err)
		return err;

	root = root_index(path->keys[0]);
	if (root < 0)
		return psprintf(
			"attribute \"%s\" has unknown root \"%s\" (use user, company, event, series or block)",
			path->text, path->keys[0]);
	if (path->nkeys < 2)
		return psprintf("attribute \"%s\" names no field (write %s.<field>)", path->text,
						root_names[root]);

	path->root = (SwAttrRoot) root;
	path->keys++;
	path->nkeys--;

	if (path->root == SW_ROOT_SERIES || path->root == SW_ROOT_BLOCK)
		return check_series_or_block_field(path);
	return NULL;
}

static void
set_string(JsonbValue *v, const char *s)
{
	v->type = jbvString;
	v->val.string.val = (char *) s;
	v->val.string.len = strlen(s);
}

static void
set_int(JsonbValue *v, int64 n)
{
	v->type = jbvNumeric;
#if PG_VERSION_NUM >= 140000
	v->val.numeric = int64_to_numeric(n);
#else
	v->val.numeric = DatumGetNumeric(DirectFunctionCall1(int8_numeric, Int64GetDatum(n)));
#endif
}

/* Walk keys[0..nkeys) into a jsonb container value. */
static bool
walk_keys(JsonbValue *cur, char **keys, int nkeys)
{
	for (int i = 0; i < nkeys; i++)
	{
		JsonbContainer *c;
		JsonbValue	   *next = NULL;

		if (cur->type != jbvBinary)
			return false;
		c = cur->val.binary.data;
		if (JsonContainerIsObject(c))
			next = getKeyJsonValueFromContainer(c, keys[i], strlen(keys[i]), NULL);
		else if (JsonContainerIsArray(c) && keys[i][strspn(keys[i], "0123456789")] == '\0' &&
				 strlen(keys[i]) < 10)
			next = getIthJsonbValueFromContainer(c, (uint32) atoi(keys[i]));
		if (next == NULL)
			return false;
		*cur = *next;
	}
	return true;
}

static bool
lookup_in_jsonb(Jsonb *doc, char **keys, int nkeys, JsonbValue *result)
{
	if (doc == NULL)
		return false;
	result->type = jbvBinary;
	result->val.binary.data = &doc->root;
	result->val.binary.len = VARSIZE(doc) - VARHDRSZ;
	return walk_keys(result, keys, nkeys);
}

/* A built-in text field: present only when non-NULL and the path ends here. */
static bool
builtin_text(const char *value, int nkeys, JsonbValue *result)
{
	if (value == NULL || nkeys != 1)
		return false;
	set_string(result, value);
	return true;
}

static bool
lookup_user(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result)
{
	const char *k = path->keys[0];

	if (strcmp(k, "id") == 0)
		return builtin_text(ctx->user_id, path->nkeys, result);
	if (strcmp(k, "email") == 0)
		return builtin_text(ctx->user_email, path->nkeys, result);
	if (strcmp(k, "name") == 0)
		return builtin_text(ctx->user_name, path->nkeys, result);
	/* Tags unknown (a database still at 0.1): an attribute of that name. */
	if (strcmp(k, "tags") == 0 && ctx->user_tags != NULL)
		return lookup_in_jsonb(ctx->user_tags, path->keys + 1, path->nkeys - 1, result);
	return lookup_in_jsonb(ctx->user_attrs, path->keys, path->nkeys, result);
}

/* A user without company has no company attributes, built-in or not. */
static bool
lookup_company(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result)
{
	const char *k = path->keys[0];

	if (ctx->company_id == NULL)
		return false;
	if (strcmp(k, "id") == 0)
		return builtin_text(ctx->company_id, path->nkeys, result);
	if (strcmp(k, "name") == 0)
		return builtin_text(ctx->company_name, path->nkeys, result);
	return lookup_in_jsonb(ctx->company_attrs, path->keys, path->nkeys, result);
}

/* event.occurred_at in ISO 8601, as JSON writes timestamps; missing without an event. */
static bool
lookup_event_time(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result)
{
	char buf[MAXDATELEN + 1];

	if (path->nkeys != 1 || ctx->event_name == NULL)
		return false;
	JsonEncodeDateTime(buf, TimestampTzGetDatum(ctx->event_occurred_at), TIMESTAMPTZOID, NULL);
	set_string(result, pstrdup(buf));
	return true;
}

static bool
lookup_event(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result)
{
	const char *k = path->keys[0];

	if (strcmp(k, "name") == 0)
		return builtin_text(ctx->event_name, path->nkeys, result);
	if (strcmp(k, "id") == 0)
	{
		if (path->nkeys != 1 || ctx->event_id == 0)
			return false;
		set_int(result, ctx->event_id);
		return true;
	}
	if (strcmp(k, "occurred_at") == 0)
		return lookup_event_time(ctx, path, result);
	return lookup_in_jsonb(ctx->event_props, path->keys, path->nkeys, result);
}

/* Series and blocks: their id, else their label (sw_attr_parse allows no other key). */
static bool
lookup_id_or_label(int32 id, const char *label, const SwAttrPath *path, JsonbValue *result)
{
	if (strcmp(path->keys[0], "id") == 0)
	{
		set_int(result, id);
		return true;
	}
	return builtin_text(label, path->nkeys, result);
}

bool
sw_attr_lookup(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result)
{
	switch (path->root)
	{
		case SW_ROOT_USER:
			return lookup_user(ctx, path, result);
		case SW_ROOT_COMPANY:
			return lookup_company(ctx, path, result);
		case SW_ROOT_EVENT:
			return lookup_event(ctx, path, result);
		case SW_ROOT_SERIES:
			return lookup_id_or_label(ctx->series_id, ctx->series_name, path, result);
		case SW_ROOT_BLOCK:
			return lookup_id_or_label(ctx->block_id, ctx->block_title, path, result);
	}
	return false;
}

char *
sw_jsonb_value_to_json(const JsonbValue *value)
{
	JsonbValue copy = *value;

	if (copy.type == jbvBinary)
		return JsonbToCString(NULL, copy.val.binary.data, copy.val.binary.len);
	return JsonbToCString(NULL, &JsonbValueToJsonb(&copy)->root, 0);
}

/* Field "key" of object "obj" as a JsonbValue, or NULL. */
static JsonbValue *
object_field(JsonbValue *obj, const char *key)
{
	if (obj == NULL || obj->type != jbvBinary || !JsonContainerIsObject(obj->val.binary.data))
		return NULL;
	return getKeyJsonValueFromContainer(obj->val.binary.data, key, strlen(key), NULL);
}

static const char *
field_text(JsonbValue *obj, const char *key)
{
	JsonbValue *v = object_field(obj, key);

	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	return sw_jsonb_value_to_json(v);
}

static Jsonb *
field_jsonb(JsonbValue *obj, const char *key)
{
	JsonbValue *v = object_field(obj, key);

	return (v == NULL || v->type == jbvNull) ? NULL : JsonbValueToJsonb(v);
}

static int64
field_int(JsonbValue *obj, const char *key)
{
	const char *t = field_text(obj, key);

	return t ? strtoi64(t, NULL, 10) : 0;
}

void
sw_context_from_jsonb(Jsonb *doc, SwContext *ctx)
{
	JsonbValue	root;
	JsonbValue *part;
	const char *ts;

	memset(ctx, 0, sizeof(*ctx));
	root.type = jbvBinary;
	root.val.binary.data = &doc->root;
	root.val.binary.len = VARSIZE(doc) - VARHDRSZ;

	part = object_field(&root, "user");
	ctx->user_id = field_text(part, "id");
	ctx->user_email = field_text(part, "email");
	ctx->user_name = field_text(part, "name");
	ctx->user_attrs = field_jsonb(part, "attributes");
	ctx->user_tags = field_jsonb(part, "tags");

	part = object_field(&root, "company");
	ctx->company_id = field_text(part, "id");
	ctx->company_name = field_text(part, "name");
	ctx->company_attrs = field_jsonb(part, "attributes");

	part = object_field(&root, "event");
	ctx->event_id = field_int(part, "id");
	ctx->event_name = field_text(part, "name");
	ctx->event_props = field_jsonb(part, "properties");
	ts = field_text(part, "occurred_at");
	if (ts)
		ctx->event_occurred_at = DatumGetTimestampTz(DirectFunctionCall3(
			timestamptz_in, CStringGetDatum(ts), ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));

	part = object_field(&root, "series");
	ctx->series_id = (int32) field_int(part, "id");
	ctx->series_name = field_text(part, "name");

	part = object_field(&root, "block");
	ctx->block_id = (int32) field_int(part, "id");
	ctx->block_title = field_text(part, "title");
}

Jsonb *
sw_jsonb_empty_array(void)
{
	static Jsonb *empty = NULL;

	if (empty == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		empty = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("[]")));
		MemoryContextSwitchTo(old);
	}
	return empty;
}

void
sw_ctx_set_user(SwContext *ctx, HeapTuple tup, TupleDesc desc, int col)
{
	ctx->user_email = sw_col_text(tup, desc, col);
	ctx->user_name = sw_col_text(tup, desc, col + 1);
	ctx->user_attrs = sw_col_jsonb(tup, desc, col + 2);
	ctx->company_id = sw_col_text(tup, desc, col + 3);
	ctx->company_name = sw_col_text(tup, desc, col + 4);
	ctx->company_attrs = sw_col_jsonb(tup, desc, col + 5);
	ctx->user_tags = sw_col_jsonb(tup, desc, col + 6);
}
