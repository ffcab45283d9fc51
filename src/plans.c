/*-------------------------------------------------------------------------
 *
 * plans.c
 *	  Prepare-once helpers for the saved SPI plans of the matcher and the
 *	  queue, and reading their result columns.  See plans.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "plans.h"
#include "utils/builtins.h"

SPIPlanPtr
sw_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes)
{
	SPIPlanPtr plan;

	if (*slot != NULL)
		return *slot;

	plan = SPI_prepare_cursor(sql, nargs, (Oid *) argtypes, CURSOR_OPT_GENERIC_PLAN);
	if (plan == NULL)
		elog(ERROR, "seriesweb: could not prepare \"%s\": %s", sql,
			 SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "seriesweb: could not keep the plan of \"%s\"", sql);
	*slot = plan;
	return plan;
}

uint64
sw_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only, long count,
		   int expected)
{
	int rc = SPI_execute_plan(plan, values, nulls, read_only, count);

	if (rc != expected)
		elog(ERROR, "seriesweb: SPI_execute_plan returned %s, expected %s",
			 SPI_result_code_string(rc), SPI_result_code_string(expected));
	return SPI_processed;
}

Jsonb *
sw_col_jsonb(HeapTuple tup, TupleDesc desc, int col)
{
	bool  isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : DatumGetJsonbPCopy(d);
}

char *
sw_col_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool  isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}
