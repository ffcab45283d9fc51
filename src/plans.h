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

/*
 * Return *slot, preparing and keeping it first if needed.  custom_plan asks
 * for a fresh plan per execution (for queries whose best plan depends on the
 * parameters, such as a claim with a LIMIT).  Must be called inside
 * SPI_connect.
 */
extern SPIPlanPtr sw_plan(SPIPlanPtr *slot, const char *sql, int nargs, const Oid *argtypes,
						  bool custom_plan);

/* Execute a saved plan and check the result code; returns SPI_processed. */
extern uint64 sw_execute(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only,
						 long count, int expected);

#endif /* SERIESWEB_PLANS_H */
