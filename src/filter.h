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

#endif /* SERIESWEB_FILTER_H */
