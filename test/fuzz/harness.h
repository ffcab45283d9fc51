/*-------------------------------------------------------------------------
 *
 * harness.h
 *	  What the fuzz targets (target_*.c) share with the driver (harness.c).
 *
 * A target turns one libFuzzer input into calls of the extension's own
 * functions.  The driver runs it inside a real backend, in a subtransaction
 * and a fresh memory context, and decides what counts as a finding: an
 * ereport(ERROR) is the expected answer to bad input, unless the target
 * said the code it is calling promises never to raise one (see
 * sw_fuzz_no_error_begin); crashes, sanitizer reports, internal errors
 * (SQLSTATE XX000) and failed oracles (sw_fuzz_finding) are findings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_FUZZ_HARNESS_H
#define SERIESWEB_FUZZ_HARNESS_H

#include "postgres.h"

#include "utils/jsonb.h"

/* What the inputs did, printed when libFuzzer exits (see README.md). */
typedef struct SwFuzzCounts
{
	long runs;	   /* inputs run (harness.c) */
	long errors;   /* ended in an expected ERROR (harness.c) */
	long decoded;  /* got past the harness's own JSON parsing */
	long accepted; /* got past the checks of the code under test */
} SwFuzzCounts;

typedef struct SwFuzzTarget
{
	const char *name;
	void (*run)(const char *data, size_t size, SwFuzzCounts *counts);
} SwFuzzTarget;

extern const SwFuzzTarget sw_fuzz_template_target;
extern const SwFuzzTarget sw_fuzz_filter_target;
extern const SwFuzzTarget sw_fuzz_guard_target;
extern const SwFuzzTarget sw_fuzz_response_target;

/*
 * Inputs are text made of sections separated by lines holding only "%%":
 * "POST\n%%\nhttps://...".  Splits data into at most max sections, as
 * palloc'd strings; sections not given are empty.  Text from SQL is always
 * valid in the database encoding (UTF-8 here) and has no NUL byte, so each
 * byte that would break that becomes "?" rather than wasting the run.
 */
extern void sw_fuzz_sections(const char *data, size_t size, char **sections, int max);

/*
 * The same split for targets that take bytes as they are (what a receiver
 * may send): sections[i] is a palloc'd copy of lens[i] bytes, NUL-terminated
 * but possibly holding NULs and invalid bytes.
 */
extern void sw_fuzz_raw_sections(const char *data, size_t size, char **sections, int *lens,
								 int max);

/* jsonb_in, the real one; an ERROR on bad JSON is an expected outcome. */
extern Jsonb *sw_fuzz_jsonb(const char *text);

/*
 * Between begin and end, the code under test has promised not to raise an
 * ERROR (it reports bad data some other way): an ERROR there is a finding,
 * named after what.
 */
extern void sw_fuzz_no_error_begin(const char *what);
extern void sw_fuzz_no_error_end(void);

/* An oracle failed: print why and abort, which libFuzzer records as a crash. */
extern void sw_fuzz_finding(const char *fmt, ...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* A memory context that mallocs every chunk on its own (chunk_context.c). */
extern MemoryContext sw_fuzz_chunk_context_create(MemoryContext parent, const char *name);

#endif /* SERIESWEB_FUZZ_HARNESS_H */
