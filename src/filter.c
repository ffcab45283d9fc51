/*-------------------------------------------------------------------------
 *
 * filter.c
 *	  Rule filters: compile the JSON of seriesweb.blocks.filters into a tree
 *	  of C structs once, then evaluate that tree against a user/company/event
 *	  context once per event.
 *
 * Compilation (sw_filter_compile) does all the checking: the validation
 * trigger on seriesweb.blocks calls it through sw_check_filters, and the
 * series cache calls it again for live series, so a filter that validates
 * always compiles.  Every mistake is an ereport(ERROR) naming the condition
 * by its position ("filter condition 2.1" is the first element of the group
 * that is the second element of the top level).  The tree owns copies of
 * its values and does not point into the Jsonb it came from.
 *
 * Evaluation (sw_filter_eval) runs inside the events trigger, so it never
 * errors on data, reads no catalogs, and keeps whatever the attribute
 * lookups allocate in a small context of its own that it resets after each
 * call.  Semantics, as in the public contract:
 *	- values are compared as JSON: the string "42" is not the number 42;
 *	  numbers compare numerically (1.0 = 1), containers structurally;
 *	- gt/gte/lt/lte compare two numbers, or two strings that are ISO 8601
 *	  timestamps (see iso8601.c); anything else is false;
 *	- a missing attribute makes every condition false except ne and
 *	  not_exists, which are true;
 *	- exists means present: a JSON null is present, a SQL NULL built-in
 *	  field (a user without email) is missing;
 *	- an empty array or "all" group always holds; an empty "any" never does.
 *
 * Explanation (sw_filter_explain, for seriesweb.explain()) walks the same
 * tree and reports every group and condition with its result, computed by
 * the evaluation code above, so that explain() and the matcher can never
 * disagree about an operator.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "attrs.h"
#include "filter.h"
#include "iso8601.h"

/* Deeper nesting is surely a mistake, and the compiler recurses. */
#define FILTER_MAX_DEPTH 32

#define CONDITION_HINT                                                                            \
	"A condition looks like {\"attribute\": \"user.plan\", \"op\": \"eq\", \"value\": \"pro\"}; " \
	"exists and not_exists take no \"value\"."
#define OPERATORS_HINT                                                                    \
	"Use one of eq, ne, gt, gte, lt, lte, contains, starts_with, ends_with, in, exists, " \
	"not_exists."
#define GROUP_HINT \
	"A group is {\"all\": [...]} or {\"any\": [...]}; nest one inside the other to combine them."
#define TIMESTAMP_HINT                                                               \
	"Timestamps look like \"2024-05-01\", \"2024-05-01T10:00:00Z\" or \"2024-05-01 " \
	"12:00:00+02:00\"; "                                                             \
	"without an offset they are UTC."

typedef enum FilterOp
{
	OP_EQ,
	OP_NE,
	OP_GT,
	OP_GTE,
	OP_LT,
	OP_LTE,
	OP_CONTAINS,
	OP_STARTS_WITH,
	OP_ENDS_WITH,
	OP_IN,
	OP_EXISTS,
	OP_NOT_EXISTS
} FilterOp;

/* What an operator accepts as "value"; checked at compile time. */
typedef enum ValueRule
{
	VALUE_NONE, /* no "value" key */
	VALUE_ANY,	/* any JSON value, null included */
	VALUE_STRING,
	VALUE_ARRAY,
	VALUE_ORDERED /* a number or an ISO 8601 timestamp string */
} ValueRule;

typedef struct OperatorInfo
{
	const char *name;
	FilterOp	op;
	ValueRule	rule;
} OperatorInfo;

static const OperatorInfo operators[] = {
	{"eq", OP_EQ, VALUE_ANY},
	{"ne", OP_NE, VALUE_ANY},
	{"gt", OP_GT, VALUE_ORDERED},
	{"gte", OP_GTE, VALUE_ORDERED},
	{"lt", OP_LT, VALUE_ORDERED},
	{"lte", OP_LTE, VALUE_ORDERED},
	{"contains", OP_CONTAINS, VALUE_ANY},
	{"starts_with", OP_STARTS_WITH, VALUE_STRING},
	{"ends_with", OP_ENDS_WITH, VALUE_STRING},
	{"in", OP_IN, VALUE_ARRAY},
	{"exists", OP_EXISTS, VALUE_NONE},
	{"not_exists", OP_NOT_EXISTS, VALUE_NONE},
};

typedef enum FilterKind
{
	FILTER_ALL,
	FILTER_ANY,
	FILTER_CONDITION
} FilterKind;

typedef struct FilterCondition
{
	SwAttrPath path;
	FilterOp   op;
	/* A copy of "value"; strings and containers point into value_doc. */
	JsonbValue value;
	Jsonb	  *value_doc;
	/* in: the elements of value, pointing into value_doc. */
	int			nelems;
	JsonbValue *elems;
	/* gt/gte/lt/lte against a timestamp rather than a number. */
	bool		value_is_time;
	TimestampTz value_time;
} FilterCondition;

struct SwFilter
{
	FilterKind		kind;
	int				nchildren; /* FILTER_ALL, FILTER_ANY */
	SwFilter	  **children;
	FilterCondition cond; /* FILTER_CONDITION */
};

/* Where the compiler is, for messages: 1-based positions from the top. */
typedef struct CompileState
{
	int depth;
	int position[FILTER_MAX_DEPTH + 1];
} CompileState;

/* Lookup results, reset after every sw_filter_eval; see there. */
static MemoryContext eval_context = NULL;

static SwFilter *compile_element(JsonbValue *element, CompileState *st);

/* ---------------------------------------------------------------------
 * Compilation
 * ---------------------------------------------------------------------
 */

/* "filter condition 2.1", "filter group 3", "top-level filter group". */
static char *
position_name(const CompileState *st, const char *what)
{
	StringInfoData buf;

	if (st->depth == 0)
		return psprintf("top-level filter %s", what);
	initStringInfo(&buf);
	appendStringInfo(&buf, "filter %s ", what);
	for (int i = 1; i <= st->depth; i++)
		appendStringInfo(&buf, i > 1 ? ".%d" : "%d", st->position[i]);
	return buf.data;
}

/* A JSON value for a message: "the string \"x\"", "the number 1", "an array". */
static const char *
describe_value(const JsonbValue *v)
{
	switch (v->type)
	{
		case jbvNull:
			return "null";
		case jbvBool:
			return v->val.boolean ? "the boolean true" : "the boolean false";
		case jbvString:
			return psprintf("the string %s", sw_jsonb_value_to_json(v));
		case jbvNumeric:
			return psprintf("the number %s", sw_jsonb_value_to_json(v));
		case jbvBinary:
			if (JsonContainerIsScalar(v->val.binary.data))
			{
				JsonbValue scalar;

				JsonbExtractScalar(v->val.binary.data, &scalar);
				return describe_value(&scalar);
			}
			return JsonContainerIsArray(v->val.binary.data) ? "an array" : "an object";
		default:
			return "an unexpected JSON value";
	}
}

static bool
is_container(const JsonbValue *v, bool array)
{
	return v->type == jbvBinary && !JsonContainerIsScalar(v->val.binary.data) &&
		   (array ? JsonContainerIsArray(v->val.binary.data)
				  : JsonContainerIsObject(v->val.binary.data));
}

static bool
key_is(const JsonbValue *key, const char *name)
{
	return key->val.string.len == (int) strlen(name) &&
		   memcmp(key->val.string.val, name, key->val.string.len) == 0;
}

static JsonbValue *
object_field(JsonbContainer *obj, const char *key, JsonbValue *buf)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), buf);
}

/* The elements of a JSON array: scalars, and containers as jbvBinary. */
static JsonbValue *
array_elements(JsonbContainer *array, int *nelems)
{
	JsonbIterator	  *it = JsonbIteratorInit(array);
	JsonbValue		  *elems = palloc(Max(JsonContainerSize(array), 1) * sizeof(JsonbValue));
	JsonbValue		   v;
	JsonbIteratorToken tok;
	int				   n = 0;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		if (tok == WJB_ELEM)
			elems[n++] = v;
	*nelems = n;
	return elems;
}

/* A deep copy of v into a Jsonb of our own; *out points into it. */
static Jsonb *
copy_value(JsonbValue *v, JsonbValue *out)
{
	Jsonb *doc = JsonbValueToJsonb(v);

	if (JB_ROOT_IS_SCALAR(doc))
		JsonbExtractScalar(&doc->root, out);
	else
	{
		out->type = jbvBinary;
		out->val.binary.data = &doc->root;
		out->val.binary.len = VARSIZE(doc) - VARHDRSZ;
	}
	return doc;
}

/* The elements of a group's array, compiled one by one. */
static SwFilter *
compile_group(FilterKind kind, JsonbContainer *array, CompileState *st)
{
	SwFilter   *f = palloc0(sizeof(SwFilter));
	JsonbValue *elems;

	check_stack_depth();
	if (st->depth >= FILTER_MAX_DEPTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("filter groups are nested more than %d levels deep", FILTER_MAX_DEPTH),
				 errdetail("The %s is at level %d.", position_name(st, "group"), st->depth + 1),
				 errhint("Flatten the filter: an \"all\" inside an \"all\" (or an \"any\" inside "
						 "an \"any\") can be merged into it.")));

	f->kind = kind;
	elems = array_elements(array, &f->nchildren);
	f->children = palloc(Max(f->nchildren, 1) * sizeof(SwFilter *));
	st->depth++;
	for (int i = 0; i < f->nchildren; i++)
	{
		st->position[st->depth] = i + 1;
		f->children[i] = compile_element(&elems[i], st);
	}
	st->depth--;
	return f;
}

/* {"all": [...]} or {"any": [...]}, and nothing else. */
static SwFilter *
compile_group_object(JsonbContainer *obj, const char *kind_name, CompileState *st)
{
	JsonbIterator	  *it = JsonbIteratorInit(obj);
	JsonbValue		   v;
	JsonbIteratorToken tok;
	JsonbValue		   buf;
	JsonbValue		  *array;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok != WJB_KEY || key_is(&v, kind_name))
			continue;
		if (key_is(&v, "all") || key_is(&v, "any"))
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s has both \"all\" and \"any\"", position_name(st, "group")),
							errhint(GROUP_HINT)));
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s has the key \"%.*s\" besides \"%s\"", position_name(st, "group"),
							   v.val.string.len, v.val.string.val, kind_name),
						errhint(GROUP_HINT)));
	}

	array = object_field(obj, kind_name, &buf);
	if (!is_container(array, true))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: \"%s\" must be an array, not %s", position_name(st, "group"),
							   kind_name, describe_value(array)),
						errhint(GROUP_HINT)));
	return compile_group(strcmp(kind_name, "all") == 0 ? FILTER_ALL : FILTER_ANY,
						 array->val.binary.data, st);
}

/* "all" or "any" if obj is a group object, else NULL. */
static const char *
group_kind(JsonbContainer *obj)
{
	JsonbValue buf;

	if (object_field(obj, "all", &buf) != NULL)
		return "all";
	if (object_field(obj, "any", &buf) != NULL)
		return "any";
	return NULL;
}

/* The three keys of a condition; an unknown key is an error. */
static void
read_condition_keys(JsonbContainer *obj, CompileState *st, JsonbValue **attr, JsonbValue **op,
					JsonbValue **value)
{
	JsonbIterator	  *it = JsonbIteratorInit(obj);
	JsonbValue		   key;
	JsonbValue		   v;
	JsonbIteratorToken tok;

	*attr = *op = *value = NULL;
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		JsonbValue **slot;

		if (tok != WJB_KEY)
			continue;
		if (key_is(&key, "attribute"))
			slot = attr;
		else if (key_is(&key, "op"))
			slot = op;
		else if (key_is(&key, "value"))
			slot = value;
		else
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("%s has an unknown key \"%.*s\"", position_name(st, "condition"),
								   key.val.string.len, key.val.string.val),
							errhint(CONDITION_HINT)));
		tok = JsonbIteratorNext(&it, &v, true);
		Assert(tok == WJB_VALUE);
		*slot = palloc(sizeof(JsonbValue));
		**slot = v;
	}
}

static void
compile_attribute(JsonbValue *attr, CompileState *st, SwAttrPath *path)
{
	char *err;

	if (attr == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s has no \"attribute\"", position_name(st, "condition")),
						errhint(CONDITION_HINT)));
	if (attr->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: \"attribute\" must be a string, not %s",
							   position_name(st, "condition"), describe_value(attr)),
						errhint(CONDITION_HINT)));
	err = sw_attr_parse(attr->val.string.val, attr->val.string.len, path);
	if (err != NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: %s", position_name(st, "condition"), err),
						errhint("Attributes look like user.plan, company.name, event.cart.total or "
								"event.items.0.sku.")));
}

static const OperatorInfo *
compile_operator(JsonbValue *op, CompileState *st)
{
	if (op == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s has no \"op\"", position_name(st, "condition")),
						errhint(OPERATORS_HINT)));
	if (op->type != jbvString)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: \"op\" must be a string, not %s",
							   position_name(st, "condition"), describe_value(op)),
						errhint(OPERATORS_HINT)));
	for (int i = 0; i < lengthof(operators); i++)
		if (key_is(op, operators[i].name))
			return &operators[i];
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s: unknown operator \"%.*s\"", position_name(st, "condition"),
						   op->val.string.len, op->val.string.val),
					errhint(OPERATORS_HINT)));
	pg_unreachable();
}

/* Does value suit the operator?  Sets the timestamp of an ordered one. */
static bool
value_fits(const OperatorInfo *info, JsonbValue *value, FilterCondition *cond)
{
	switch (info->rule)
	{
		case VALUE_NONE:
		case VALUE_ANY:
			return true;
		case VALUE_STRING:
			return value->type == jbvString;
		case VALUE_ARRAY:
			return is_container(value, true);
		case VALUE_ORDERED:
			if (value->type == jbvNumeric)
				return true;
			cond->value_is_time = value->type == jbvString &&
								  sw_parse_iso_timestamp(value->val.string.val,
														 value->val.string.len, &cond->value_time);
			return cond->value_is_time;
	}
	return false;
}

static void
compile_value(const OperatorInfo *info, JsonbValue *value, CompileState *st, FilterCondition *cond)
{
	static const char *const wanted[] = {
		[VALUE_STRING] = "a string \"value\"",
		[VALUE_ARRAY] = "an array \"value\"",
		[VALUE_ORDERED] = "a number or an ISO 8601 timestamp \"value\"",
	};

	if (info->rule == VALUE_NONE && value != NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: operator \"%s\" takes no \"value\"",
							   position_name(st, "condition"), info->name),
						errhint("Remove \"value\": exists holds when the attribute is present "
								"(even as JSON null), not_exists when it is missing.")));
	if (info->rule == VALUE_NONE)
		return;
	if (value == NULL)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s: operator \"%s\" needs a \"value\"",
							   position_name(st, "condition"), info->name),
						errhint(CONDITION_HINT)));
	if (!value_fits(info, value, cond))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: operator \"%s\" needs %s, not %s", position_name(st, "condition"),
						info->name, wanted[info->rule], describe_value(value)),
				 info->rule == VALUE_ORDERED ? errhint(TIMESTAMP_HINT)
				 : info->rule == VALUE_ARRAY ? errhint("Write \"value\": [\"pro\", \"team\"].")
											 : 0));

	cond->value_doc = copy_value(value, &cond->value);
	if (info->op == OP_IN)
		cond->elems = array_elements(cond->value.val.binary.data, &cond->nelems);
}

static SwFilter *
compile_condition(JsonbContainer *obj, CompileState *st)
{
	SwFilter		   *f = palloc0(sizeof(SwFilter));
	JsonbValue		   *attr;
	JsonbValue		   *op;
	JsonbValue		   *value;
	const OperatorInfo *info;

	read_condition_keys(obj, st, &attr, &op, &value);
	f->kind = FILTER_CONDITION;
	compile_attribute(attr, st, &f->cond.path);
	info = compile_operator(op, st);
	f->cond.op = info->op;
	compile_value(info, value, st, &f->cond);
	return f;
}

/* An element of a group: a condition, a group object or a nested array. */
static SwFilter *
compile_element(JsonbValue *element, CompileState *st)
{
	JsonbContainer *c;
	const char	   *kind_name;

	if (is_container(element, true))
		return compile_group(FILTER_ALL, element->val.binary.data, st);
	if (!is_container(element, false))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("%s must be an object, not %s", position_name(st, "condition"),
							   describe_value(element)),
						errhint(CONDITION_HINT)));
	c = element->val.binary.data;
	kind_name = group_kind(c);
	if (kind_name != NULL)
		return compile_group_object(c, kind_name, st);
	return compile_condition(c, st);
}

SwFilter *
sw_filter_compile(Jsonb *filters)
{
	CompileState st = {0};
	JsonbValue	 root;
	const char	*kind_name;

	root.type = jbvBinary;
	root.val.binary.data = &filters->root;
	root.val.binary.len = VARSIZE(filters) - VARHDRSZ;

	if (JB_ROOT_IS_SCALAR(filters))
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("filters must be a JSON array or object, not %s", describe_value(&root)),
			 errhint(
				 "Write a list of conditions that must all hold, [{\"attribute\": \"user.plan\", "
				 "\"op\": \"eq\", \"value\": \"pro\"}], or {\"all\": [...]} / {\"any\": [...]}.")));
	if (JB_ROOT_IS_ARRAY(filters))
		return compile_group(FILTER_ALL, &filters->root, &st);

	kind_name = group_kind(&filters->root);
	if (kind_name == NULL)
	{
		JsonbValue buf;
		bool	   looks_like_condition = object_field(&filters->root, "attribute", &buf) ||
									object_field(&filters->root, "op", &buf);

		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("filters object must have the key \"all\" or \"any\""),
			 looks_like_condition ? errdetail("It looks like a single condition.") : 0,
			 errhint("Write a list of conditions that must all hold, [{\"attribute\": ..., \"op\": "
					 "..., \"value\": ...}], or {\"all\": [...]} / {\"any\": [...]}.")));
	}
	return compile_group_object(&filters->root, kind_name, &st);
}

/* ---------------------------------------------------------------------
 * Evaluation
 * ---------------------------------------------------------------------
 */

/* A container holding one scalar becomes that scalar. */
static const JsonbValue *
unwrap_scalar(const JsonbValue *v, JsonbValue *buf)
{
	if (v->type == jbvBinary && JsonContainerIsScalar(v->val.binary.data) &&
		JsonbExtractScalar(v->val.binary.data, buf))
		return buf;
	return v;
}

/* JSON equality: same type, numbers numerically, containers structurally. */
static bool
values_equal(const JsonbValue *a, const JsonbValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvNull:
			return true;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				   memcmp(a->val.string.val, b->val.string.val, a->val.string.len) == 0;
		case jbvNumeric:
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(a->val.numeric),
													 NumericGetDatum(b->val.numeric))) == 0;
		case jbvBinary:
			return compareJsonbContainers(a->val.binary.data, b->val.binary.data) == 0;
		default:
			return false;
	}
}

/*
 * Order attr against the condition's value: two numbers, or two timestamps.
 * False when they are not comparable.
 */
static bool
compare_ordered(const JsonbValue *attr, const FilterCondition *cond, int *cmp)
{
	if (cond->value_is_time)
	{
		TimestampTz t;

		if (attr->type != jbvString ||
			!sw_parse_iso_timestamp(attr->val.string.val, attr->val.string.len, &t))
			return false;
		*cmp = (t > cond->value_time) - (t < cond->value_time);
		return true;
	}
	if (attr->type != jbvNumeric)
		return false;
	*cmp = DatumGetInt32(DirectFunctionCall2(numeric_cmp, NumericGetDatum(attr->val.numeric),
											 NumericGetDatum(cond->value.val.numeric)));
	return true;
}

/*
 * glibc's memmem is linear; a naive scan is quadratic, seconds for a long
 * "value" in a long attribute, inside the application's INSERT.
 */
static bool
bytes_contain(const char *hay, int hay_len, const char *needle, int needle_len)
{
	return needle_len == 0 || memmem(hay, hay_len, needle, needle_len) != NULL;
}

/* A string containing the value as a substring, or an array holding it. */
static bool
eval_contains(const JsonbValue *attr, const JsonbValue *value)
{
	JsonbIterator	  *it;
	JsonbValue		   elem;
	JsonbIteratorToken tok;

	if (attr->type == jbvString)
		return value->type == jbvString &&
			   bytes_contain(attr->val.string.val, attr->val.string.len, value->val.string.val,
							 value->val.string.len);
	if (!is_container(attr, true))
		return false;
	it = JsonbIteratorInit(attr->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
		if (tok == WJB_ELEM && values_equal(&elem, value))
			return true;
	return false;
}

static bool
eval_affix(const JsonbValue *attr, const JsonbValue *value, bool prefix)
{
	int len = value->val.string.len;

	if (attr->type != jbvString || attr->val.string.len < len)
		return false;
	return memcmp(prefix ? attr->val.string.val : attr->val.string.val + attr->val.string.len - len,
				  value->val.string.val, len) == 0;
}

/* "in": equal to one of the listed values. */
static bool
eval_in(const JsonbValue *attr, const FilterCondition *cond)
{
	for (int i = 0; i < cond->nelems; i++)
		if (values_equal(attr, &cond->elems[i]))
			return true;
	return false;
}

static bool
eval_condition(const FilterCondition *cond, const SwContext *ctx)
{
	JsonbValue		  found;
	JsonbValue		  buf;
	const JsonbValue *attr;
	int				  cmp;

	if (!sw_attr_lookup(ctx, &cond->path, &found))
		return cond->op == OP_NE || cond->op == OP_NOT_EXISTS;
	attr = unwrap_scalar(&found, &buf);

	switch (cond->op)
	{
		case OP_EQ:
			return values_equal(attr, &cond->value);
		case OP_NE:
			return !values_equal(attr, &cond->value);
		case OP_GT:
			return compare_ordered(attr, cond, &cmp) && cmp > 0;
		case OP_GTE:
			return compare_ordered(attr, cond, &cmp) && cmp >= 0;
		case OP_LT:
			return compare_ordered(attr, cond, &cmp) && cmp < 0;
		case OP_LTE:
			return compare_ordered(attr, cond, &cmp) && cmp <= 0;
		case OP_CONTAINS:
			return eval_contains(attr, &cond->value);
		case OP_STARTS_WITH:
			return eval_affix(attr, &cond->value, true);
		case OP_ENDS_WITH:
			return eval_affix(attr, &cond->value, false);
		case OP_IN:
			return eval_in(attr, cond);
		case OP_EXISTS:
			return true;
		case OP_NOT_EXISTS:
			return false;
	}
	return false;
}

/* Groups stop at the first condition that decides them. */
static bool
eval_node(const SwFilter *f, const SwContext *ctx)
{
	switch (f->kind)
	{
		case FILTER_ALL:
			for (int i = 0; i < f->nchildren; i++)
				if (!eval_node(f->children[i], ctx))
					return false;
			return true;
		case FILTER_ANY:
			for (int i = 0; i < f->nchildren; i++)
				if (eval_node(f->children[i], ctx))
					return true;
			return false;
		case FILTER_CONDITION:
			return eval_condition(&f->cond, ctx);
	}
	return false;
}

/*
 * Attribute lookups allocate a little (a numeric for ids, the text of
 * event.occurred_at, lookup results, iterators).  This runs once per event
 * and rule inside the events trigger, possibly for a whole COPY, so those
 * allocations go to a context of our own, reset after each call: resetting
 * a context that nothing was allocated in costs nothing.  It lives as long
 * as the backend (it is tiny) so that no call pays for creating one.
 */
bool
sw_filter_eval(const SwFilter *filter, const SwContext *ctx)
{
	MemoryContext old;
	bool		  result;

	if (eval_context == NULL)
		eval_context = AllocSetContextCreate(TopMemoryContext, "seriesweb filter evaluation",
											 ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(eval_context);
	result = eval_node(filter, ctx);
	MemoryContextSwitchTo(old);
	MemoryContextReset(eval_context);
	return result;
}

/* ---------------------------------------------------------------------
 * Explanation: each group and condition with its result, for explain()
 * ---------------------------------------------------------------------
 */

static const char *
operator_name(FilterOp op)
{
	for (int i = 0; i < lengthof(operators); i++)
		if (operators[i].op == op)
			return operators[i].name;
	return "?";
}

/* The condition as written: user.plan eq "pro", user.email exists. */
static char *
condition_text(const FilterCondition *cond)
{
	if (cond->value_doc == NULL)
		return psprintf("%s %s", cond->path.text, operator_name(cond->op));
	return psprintf("%s %s %s", cond->path.text, operator_name(cond->op),
					JsonbToCString(NULL, &cond->value_doc->root, VARSIZE(cond->value_doc)));
}

/*
 * A group's result is eval_node's, so it is the matcher's by construction;
 * its members are then evaluated one by one to show each of them.  Runs in
 * CurrentMemoryContext, not eval_context: the steps outlive the call.
 */
static void
explain_node(const SwFilter *f, const SwContext *ctx, int depth, List **steps)
{
	SwFilterStep *step = palloc0(sizeof(SwFilterStep));
	JsonbValue	  found;

	check_stack_depth();
	step->depth = depth;
	step->holds = eval_node(f, ctx);
	*steps = lappend(*steps, step);
	if (f->kind == FILTER_CONDITION)
	{
		step->condition = condition_text(&f->cond);
		step->attribute = pstrdup(f->cond.path.text);
		if (sw_attr_lookup(ctx, &f->cond.path, &found))
			step->actual = JsonbValueToJsonb(&found);
		return;
	}
	step->condition = f->kind == FILTER_ANY ? "any of" : "all of";
	for (int i = 0; i < f->nchildren; i++)
		explain_node(f->children[i], ctx, depth + 1, steps);
}

List *
sw_filter_explain(const SwFilter *filter, const SwContext *ctx)
{
	List *steps = NIL;

	explain_node(filter, ctx, 0, &steps);
	return steps;
}

/* ---------------------------------------------------------------------
 * SQL-callable functions
 * ---------------------------------------------------------------------
 */

/* seriesweb._check_filters(jsonb): the blocks validation trigger's check. */
PG_FUNCTION_INFO_V1(sw_check_filters);
Datum
sw_check_filters(PG_FUNCTION_ARGS)
{
	sw_filter_compile(PG_GETARG_JSONB_P(0));
	PG_RETURN_VOID();
}

/* seriesweb._filter_matches(filters, context): for the regression tests. */
PG_FUNCTION_INFO_V1(sw_filter_eval_sql);
Datum
sw_filter_eval_sql(PG_FUNCTION_ARGS)
{
	SwFilter *filter = sw_filter_compile(PG_GETARG_JSONB_P(0));
	SwContext ctx;

	sw_context_from_jsonb(PG_GETARG_JSONB_P(1), &ctx);
	PG_RETURN_BOOL(sw_filter_eval(filter, &ctx));
}
