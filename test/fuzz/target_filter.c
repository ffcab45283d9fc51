/*-------------------------------------------------------------------------
 *
 * target_filter.c
 *	  Fuzz target "filter": compile a rule filter with sw_filter_compile,
 *	  then evaluate it with sw_filter_eval.
 *
 * Input: two sections (harness.h) — the filter (JSON) and the context
 * (what seriesweb._filter_matches takes; empty for none).
 *
 * Compiling may raise an ERROR: that is how a malformed filter is refused.
 * Evaluating runs inside the events trigger and must not (filter.h).  The
 * compiled filter must not point into the Jsonb it came from (filter.h), so
 * that is freed first, and ASan reports any use of it; and evaluating twice
 * must give the same answer (nothing may leak from one evaluation into the
 * next through the evaluation context that sw_filter_eval resets).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "filter.h"
#include "harness.h"

enum
{
	SEC_FILTER,
	SEC_CONTEXT,
	NSECTIONS
};

static void
run_filter(const char *data, size_t size, SwFuzzCounts *counts)
{
	char	 *sec[NSECTIONS];
	Jsonb	 *doc;
	SwContext ctx;
	SwFilter *filter;
	bool	  first;
	bool	  second;

	sw_fuzz_sections(data, size, sec, NSECTIONS);
	doc = sw_fuzz_jsonb(sec[SEC_FILTER]);
	memset(&ctx, 0, sizeof(ctx));
	if (*sec[SEC_CONTEXT])
		sw_context_from_jsonb(sw_fuzz_jsonb(sec[SEC_CONTEXT]), &ctx);
	counts->decoded++;

	filter = sw_filter_compile(doc);
	counts->accepted++;
	pfree(doc);

	sw_fuzz_no_error_begin("sw_filter_eval");
	first = sw_filter_eval(filter, &ctx);
	second = sw_filter_eval(filter, &ctx);
	sw_fuzz_no_error_end();
	if (first != second)
		sw_fuzz_finding("the same filter and context evaluated to %d, then %d", first, second);
}

const SwFuzzTarget sw_fuzz_filter_target = {"filter", run_filter};
