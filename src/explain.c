/*-------------------------------------------------------------------------
 *
 * explain.c
 *	  seriesweb.explain(block_id, test_user): does a rule hold for a user
 *	  now, and if not, which of its conditions fails?
 *
 * The rule's filters are compiled and evaluated by filter.c, the code the
 * matcher runs (sw_filter_explain walks the compiled tree and reports each
 * group and condition), against the test user (found by test_user.c, as
 * test_webhook() finds one) and their company as they are now, in the
 * context the matcher gives a rule: the user and the company.  There is no
 * event: event.* attributes are missing, so a condition on one holds only
 * for ne and not_exists, as when a rule with no event name is checked.
 *
 * Rows, in order: for a rule that names an event, the requirement
 * event.name eq "<name>" with holds NULL (an event decides it, and there is
 * none); then the top-level group, whose holds says whether the filters
 * hold as a whole; then each member in the order written, a nested group
 * before its own members, indented two spaces per level.  actual is the
 * attribute's value (JSON null when present as null), SQL NULL when it is
 * missing and for groups.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "filter.h"
#include "funcapi.h"
#include "plans.h"
#include "test_user.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

/* clang-format off */
static const char rule_sql[] =
	"SELECT b.kind, b.event_name, b.filters, b.title, s.series_id, s.name "
	"  FROM seriesweb.blocks b JOIN seriesweb.series s ON s.series_id = b.series_id "
	" WHERE b.block_id = $1";
/* clang-format on */

static void
not_a_rule(int32 block_id, const char *kind)
{
	if (strcmp(kind, "webhook") == 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("block %d is a webhook, not a rule", block_id),
						errdetail("A webhook fires for every user who reaches it; it has no "
								  "conditions."),
						errhint("Explain the rule before it; seriesweb.journey(test_user) shows "
								"which blocks the user has reached.")));
	if (strcmp(kind, "wait") == 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("block %d is a wait, not a rule", block_id),
						errdetail("A wait holds every user who reaches it for its duration; it "
								  "has no conditions."),
						errhint("seriesweb.journey(test_user) shows whether the user waits there, "
								"and until when.")));
	ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
					errmsg("block %d is a %s, not a rule", block_id, kind),
					errhint("Explain a rule block.")));
}

/*
 * The rule's event name (NULL for none) and compiled filters, in cxt; its
 * series and block in ctx, as the matcher has them.
 */
static SwFilter *
read_rule(int32 block_id, char **event_name, SwContext *ctx, MemoryContext cxt)
{
	Oid		  argtypes[1] = {INT4OID};
	Datum	  args[1] = {Int32GetDatum(block_id)};
	HeapTuple tup;
	TupleDesc desc;
	char	 *kind;
	bool	  isnull;

	if (SPI_execute_with_args(rule_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "seriesweb: could not read block %d", block_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND), errmsg("block %d does not exist", block_id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	kind = SPI_getvalue(tup, desc, 1);
	if (strcmp(kind, "rule") != 0)
		not_a_rule(block_id, kind);

	MemoryContextSwitchTo(cxt);
	*event_name = sw_col_text(tup, desc, 2);
	ctx->block_id = block_id;
	ctx->block_title = sw_col_text(tup, desc, 4);
	ctx->series_id = DatumGetInt32(SPI_getbinval(tup, desc, 5, &isnull));
	ctx->series_name = sw_col_text(tup, desc, 6);
	return sw_filter_compile(sw_col_jsonb(tup, desc, 3));
}

/* The event name requirement as a row of its own: decided by an event. */
static SwFilterStep *
event_name_step(const char *event_name)
{
	SwFilterStep *step = palloc0(sizeof(SwFilterStep));
	JsonbValue	  name;

	name.type = jbvString;
	name.val.string.val = (char *) event_name;
	name.val.string.len = strlen(event_name);
	step->condition = psprintf("event.name eq %s", sw_jsonb_value_to_json(&name));
	step->attribute = "event.name";
	return step;
}

/* Every row explain() returns, in cxt. */
static List *
explain_rule(int32 block_id, const char *test_user, MemoryContext cxt)
{
	SwContext ctx;
	SwFilter *filter;
	char	 *event_name;
	List	 *steps = NIL;

	memset(&ctx, 0, sizeof(ctx));
	SPI_connect();
	filter = read_rule(block_id, &event_name, &ctx, cxt);
	sw_test_user_load(test_user, &ctx, cxt);
	if (event_name != NULL)
		steps = lappend(steps, event_name_step(event_name));
	steps = list_concat(steps, sw_filter_explain(filter, &ctx));
	SPI_finish();
	return steps;
}

/* A step as a result row; the event name step's holds is NULL. */
static HeapTuple
step_tuple(SwFilterStep *step, bool is_event_name, TupleDesc tupdesc)
{
	Datum values[4];
	bool  nulls[4] = {false, step->attribute == NULL, step->actual == NULL, is_event_name};

	values[0] = CStringGetTextDatum(psprintf("%*s%s", 2 * step->depth, "", step->condition));
	values[1] = step->attribute ? CStringGetTextDatum(step->attribute) : (Datum) 0;
	values[2] = step->actual ? JsonbPGetDatum(step->actual) : (Datum) 0;
	values[3] = BoolGetDatum(step->holds);
	return heap_form_tuple(tupdesc, values, nulls);
}

PG_FUNCTION_INFO_V1(sw_explain);
Datum
sw_explain(PG_FUNCTION_ARGS)
{
	FuncCallContext *funcctx;
	List			*steps;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		TupleDesc	  tupdesc;

		if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
			ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
							errmsg("explain needs a block id and a test user")));
		funcctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(funcctx->multi_call_memory_ctx);
		if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
			elog(ERROR, "seriesweb: explain must return rows");
		funcctx->tuple_desc = BlessTupleDesc(tupdesc);
		funcctx->user_fctx = explain_rule(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)),
										  funcctx->multi_call_memory_ctx);
		MemoryContextSwitchTo(old);
	}

	funcctx = SRF_PERCALL_SETUP();
	steps = funcctx->user_fctx;
	if (funcctx->call_cntr < (uint64) list_length(steps))
	{
		SwFilterStep *step = list_nth(steps, (int) funcctx->call_cntr);
		/* The filter's depth 0 is its top-level group: a condition there is ours. */
		bool is_event_name = step->depth == 0 && step->attribute != NULL;

		SRF_RETURN_NEXT(funcctx,
						HeapTupleGetDatum(step_tuple(step, is_event_name, funcctx->tuple_desc)));
	}
	SRF_RETURN_DONE(funcctx);
}
