/*-------------------------------------------------------------------------
 *
 * filter.h
 *	  Rule filters: compile the JSON of seriesweb.blocks.filters once, then
 *	  evaluate it against a user/company/event context many times.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_FILTER_H
#define SERIESWEB_FILTER_H

#include "attrs.h"
#include "nodes/pg_list.h"

typedef struct SwFilter SwFilter;

/*
 * Compile a filter document (an array of conditions, or {"all": [...]} /
 * {"any": [...]}, nested).  A malformed filter is an ereport(ERROR) that
 * names the offending part.  The result lives in CurrentMemoryContext and
 * does not point into the Jsonb.
 */
extern SwFilter *sw_filter_compile(Jsonb *filters);

/* Does the filter hold for this context?  Never errors on data. */
extern bool sw_filter_eval(const SwFilter *filter, const SwContext *ctx);

/*
 * One row of an explanation: a group or a condition of the filter, with
 * its result for a context.
 */
typedef struct SwFilterStep
{
	int	   depth;	  /* 0 for the top-level group, members one deeper */
	char  *condition; /* "user.plan eq \"pro\"", or "all of" / "any of" */
	char  *attribute; /* the path as written; NULL for a group */
	Jsonb *actual;	  /* the attribute's value; NULL when missing, or a group */
	bool   holds;
} SwFilterStep;

/*
 * Every group and condition of the filter, in the order written (a group
 * before its members), each evaluated for ctx by the code sw_filter_eval
 * runs, but without stopping at the member that decides a group.  A List
 * of SwFilterStep in CurrentMemoryContext; the first says whether the
 * whole filter holds.  For explain(), not for the events trigger.
 */
extern List *sw_filter_explain(const SwFilter *filter, const SwContext *ctx);

#endif /* SERIESWEB_FILTER_H */
