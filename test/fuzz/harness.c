/*-------------------------------------------------------------------------
 *
 * harness.c
 *	  The libFuzzer driver, run inside a single-user PostgreSQL backend.
 *
 * The code under test (the files of src/, compiled as they are into
 * sw_fuzz.so) lives on PostgreSQL's jsonb, numeric, timestamp and
 * JSON-parser code, which exists only inside the server.  So rather than
 * faking those, the fuzzer runs where they are: run.sh starts `postgres
 * --single`, which calls the SQL function sw_fuzz_run, which hands control
 * to libFuzzer (LLVMFuzzerRunDriver) until the time is up.  libFuzzer then
 * exits the process; a crash or sanitizer report ends it earlier, with the
 * input saved as an artifact.  See README.md for the whole design.
 *
 * Each input runs in a subtransaction, as a PL/pgSQL exception block would,
 * so that an ERROR is rolled back the way the server rolls it back, and in
 * a memory context of its own (chunk_context.c), reset afterwards.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdio.h>
#include <stdlib.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/memutils.h"
#include "utils/resowner.h"

#include "harness.h"

PG_MODULE_MAGIC;

/* libFuzzer's entry point for programs that have their own main (LLVM 13+). */
extern int LLVMFuzzerRunDriver(int *argc, char ***argv,
							   int (*callback)(const uint8_t *data, size_t size));

static const SwFuzzTarget *const targets[] = {
	&sw_fuzz_template_target,
	&sw_fuzz_filter_target,
	&sw_fuzz_guard_target,
	&sw_fuzz_response_target,
};

#define SECTION_SEPARATOR "\n%%\n"

static const SwFuzzTarget *target;
static SwFuzzCounts		   counts;
static MemoryContext	   input_context;

/* What promised not to raise an ERROR, while it runs; else NULL. */
static const char *no_error_region;

/* A copy of data[0..size) as valid, NUL-free UTF-8. */
static char *
as_text(const char *data, size_t size)
{
	char *text = palloc(size + 1);

	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i < size;)
	{
		int len = text[i] ? pg_encoding_verifymbchar(PG_UTF8, text + i, size - i) : -1;

		if (len > 0)
			i += len;
		else
			text[i++] = '?';
	}
	return text;
}

void
sw_fuzz_raw_sections(const char *data, size_t size, char **sections, int *lens, int max)
{
	const char *text = data;
	const char *end = data + size;
	int			i;

	/* Editors end files with a newline; a corpus file should not have to care. */
	if (size > 0 && end[-1] == '\n')
		end--;
	for (i = 0; i < max; i++)
	{
		const char *sep = NULL;

		if (i < max - 1)
			for (const char *p = text; p + strlen(SECTION_SEPARATOR) <= end && sep == NULL; p++)
				if (memcmp(p, SECTION_SEPARATOR, strlen(SECTION_SEPARATOR)) == 0)
					sep = p;
		lens[i] = (sep ? sep : end) - text;
		sections[i] = palloc(lens[i] + 1);
		memcpy(sections[i], text, lens[i]);
		sections[i][lens[i]] = '\0';
		if (sep == NULL)
			break;
		text = sep + strlen(SECTION_SEPARATOR);
	}
	for (i++; i < max; i++)
	{
		sections[i] = pstrdup("");
		lens[i] = 0;
	}
}

void
sw_fuzz_sections(const char *data, size_t size, char **sections, int max)
{
	int *lens = palloc(max * sizeof(int));

	sw_fuzz_raw_sections(as_text(data, size), size, sections, lens, max);
}

Jsonb *
sw_fuzz_jsonb(const char *text)
{
	return DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
}

void
sw_fuzz_no_error_begin(const char *what)
{
	no_error_region = what;
}

void
sw_fuzz_no_error_end(void)
{
	no_error_region = NULL;
}

void
sw_fuzz_finding(const char *fmt, ...)
{
	va_list args;

	fprintf(stderr, "\nsw_fuzz: FINDING in target %s: ", target->name);
	va_start(args, fmt);
	vfprintf(stderr, fmt, args);
	va_end(args);
	fprintf(stderr, "\n");
	fflush(stderr);
	abort();
}

/*
 * In PG_CATCH: an ERROR is what bad input should get, except where the code
 * promised none, and except an internal error: elog(ERROR) marks a state
 * that "cannot happen", and our own ereports always carry a SQLSTATE.
 */
static void
check_error(void)
{
	ErrorData *edata;

	MemoryContextSwitchTo(input_context);
	edata = CopyErrorData();
	FlushErrorState();
	if (no_error_region != NULL)
		sw_fuzz_finding("%s raised an ERROR although it promises not to: %s", no_error_region,
						edata->message);
	if (edata->sqlerrcode == ERRCODE_INTERNAL_ERROR)
		sw_fuzz_finding("internal error (SQLSTATE XX000): %s", edata->message);
	counts.errors++;
}

/* libFuzzer's callback: one input, in its own subtransaction and context. */
static int
run_input(const uint8_t *data, size_t size)
{
	MemoryContext caller = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	counts.runs++;
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(input_context);
	PG_TRY();
	{
		target->run((const char *) data, size, &counts);
		ReleaseCurrentSubTransaction();
	}
	PG_CATCH();
	{
		check_error();
		RollbackAndReleaseCurrentSubTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	CurrentResourceOwner = owner;
	no_error_region = NULL;
	MemoryContextReset(input_context);
	return 0;
}

/* libFuzzer ends with exit(): say what the inputs did on the way out. */
static void
print_counts(void)
{
	fprintf(stderr,
			"sw_fuzz: target %s: %ld runs, %ld past JSON decoding, %ld accepted by the code "
			"under test; %ld ended in an expected ERROR\n",
			target->name, counts.runs, counts.decoded, counts.accepted, counts.errors);
}

static const SwFuzzTarget *
find_target(const char *name)
{
	for (int i = 0; i < lengthof(targets); i++)
		if (strcmp(targets[i]->name, name) == 0)
			return targets[i];
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown fuzz target \"%s\"", name),
			 errhint("Use template, filter, guard or response.")));
	pg_unreachable();
}

/*
 * sw_fuzz_run(target text, args text[]): run libFuzzer with these
 * command-line arguments (options, corpus directories or input files).
 * Does not return: libFuzzer exits the process when it is done.
 */
PG_FUNCTION_INFO_V1(sw_fuzz_run);
Datum
sw_fuzz_run(PG_FUNCTION_ARGS)
{
	const char *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;
	int			argc;
	char	  **argv;

	target = find_target(name);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(1), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls,
					  &nelems);
	argv = palloc((nelems + 2) * sizeof(char *));
	argv[0] = psprintf("sw_fuzz_%s", name);
	for (int i = 0; i < nelems; i++)
		argv[i + 1] = TextDatumGetCString(elems[i]);
	argc = nelems + 1;
	argv[argc] = NULL;

	input_context = sw_fuzz_chunk_context_create(TopMemoryContext, "sw_fuzz input");
	atexit(print_counts);
	PG_RETURN_INT32(LLVMFuzzerRunDriver(&argc, &argv, run_input));
}
