/*-------------------------------------------------------------------------
 *
 * plans.h
 *	  Saved SPI plans: each statement that runs per event or per batch is
 *	  prepared once per backend and kept (SPI_keepplan), so the hot paths
 *	  never parse or plan SQL text.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_PLANS_H
#define SERIESWEB_PLANS_H

#include "postgres.h"

#include "executor/spi.h"
#include "utils/jsonb.h"

/*
 * Return *slot, preparing and keeping it first if needed.  The plan is
 * generic, made once: every statement here finds its rows by key, and
 * planning again for each execution would cost more than the statement
 * (the plan cache keeps choosing custom plans for an unnest of a one-element
 * array).  Must be called inside SPI_connect.
 */
extern SPIPlanPtr sw_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes);

/* Execute a saved plan and check the result code; returns SPI_processed. */
extern uint64 sw_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only,
						 long count, int expected);

/* Column col of a result row as a copied jsonb; NULL when SQL NULL. */
extern Jsonb *sw_col_jsonb(HeapTuple tup, TupleDesc desc, int col);

/* Column col (text) of a result row as a C string; NULL when SQL NULL. */
extern char *sw_col_text(HeapTuple tup, TupleDesc desc, int col);

#endif /* SERIESWEB_PLANS_H */
