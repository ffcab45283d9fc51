/*-------------------------------------------------------------------------
 *
 * attrs.h
 *	  Attribute paths ("user.plan", "event.cart.total") and the context they
 *	  are resolved against.
 *
 * Filters (filter.c) and templates (render.c) both name attributes the same
 * way.  A path is parsed once, when a block is defined or compiled into the
 * series cache, and resolved many times, once per event or delivery, against
 * an SwContext that points at the user, company and event rows of the moment.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_ATTRS_H
#define SERIESWEB_ATTRS_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "datatype/timestamp.h"
#include "utils/jsonb.h"

typedef enum SwAttrRoot
{
	SW_ROOT_USER,
	SW_ROOT_COMPANY,
	SW_ROOT_EVENT,
	SW_ROOT_SERIES,
	SW_ROOT_BLOCK
} SwAttrRoot;

/*
 * A parsed path.  keys[0] is the first key after the root ("plan" in
 * "user.plan"); a built-in field (user.id, event.occurred_at, ...) is looked
 * up by name first and shadows an attribute of the same name.  A key made of
 * digits also indexes into a JSON array ("event.items.0.sku").
 */
typedef struct SwAttrPath
{
	SwAttrRoot root;
	int		   nkeys; /* >= 1 */
	char	 **keys;
	char	  *text; /* the path as written, for messages */
} SwAttrPath;

/*
 * What attributes are resolved against.  Any pointer may be NULL: the field
 * is then missing (a user without company, a user without email).
 */
typedef struct SwContext
{
	const char *user_id;
	const char *user_email;
	const char *user_name;
	Jsonb	   *user_attrs;
	Jsonb	   *user_tags; /* a JSON array */

	const char *company_id;
	const char *company_name;
	Jsonb	   *company_attrs;

	int64		event_id;
	const char *event_name;
	TimestampTz event_occurred_at;
	Jsonb	   *event_props;

	int32		series_id;
	const char *series_name;
	int32		block_id;
	const char *block_title;
} SwContext;

/*
 * Parse text[0..len) as an attribute path.  Surrounding blanks are ignored.
 * On success fills *path (allocated in CurrentMemoryContext) and returns
 * NULL; otherwise returns a palloc'd message saying what is wrong, for the
 * caller to put in its own ereport (filters and templates word it apart).
 */
extern char *sw_attr_parse(const char *text, int len, SwAttrPath *path);

/*
 * Resolve a path.  Returns false when the attribute is missing (no such key,
 * SQL NULL, or a key applied to a scalar).  On success *result is a scalar
 * JsonbValue (jbvString/jbvNumeric/jbvBool/jbvNull) or a jbvBinary pointing
 * into the context's Jsonb (valid as long as the context is); built-in text
 * fields become jbvString, ids jbvNumeric, event.occurred_at an ISO 8601
 * jbvString.
 */
extern bool sw_attr_lookup(const SwContext *ctx, const SwAttrPath *path, JsonbValue *result);

/*
 * Fill *ctx from a JSON description, for the SQL-callable test functions of
 * filters and templates:
 *   {"user": {"id", "email", "name", "attributes": {}},
 *    "company": {"id", "name", "attributes": {}},
 *    "event": {"id", "name", "occurred_at", "properties": {}},
 *    "series": {"id", "name"}, "block": {"id", "title"}}
 * Every part is optional.
 */
extern void sw_context_from_jsonb(Jsonb *doc, SwContext *ctx);

/* [], for the tags of a user just created. */
extern Jsonb *sw_jsonb_empty_array(void);

/*
 * The user and company fields of ctx from columns col .. col + 6 of an SPI
 * result row: email, name, attributes, company_id, company name, company
 * attributes, tags (a JSON array, or NULL before 0.2).
 */
extern void sw_ctx_set_user(SwContext *ctx, HeapTuple tup, TupleDesc desc, int col);

/* The JSON text of a looked-up value (strings quoted), palloc'd. */
extern char *sw_jsonb_value_to_json(const JsonbValue *value);

#endif /* SERIESWEB_ATTRS_H */
