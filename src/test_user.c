/*-------------------------------------------------------------------------
 *
 * test_user.c
 *	  Find the user an author names when trying a series out, by user_id,
 *	  email or name.  See test_user.h.
 *
 * test_webhook() and preview() (try_webhook.c), journey() (through
 * seriesweb._test_user) and explain() (explain.c) all take a "test user"
 * this way, so they agree on who it is and fail alike: none or several
 * matching users is an error whose detail lists candidates.  These run
 * once per call, by an author, so the statements are not saved plans.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "test_user.h"
#include "utils/builtins.h"

/* "u1 (a@example.com), u2 (no email)" for the rows of the last query. */
static char *
list_users(uint64 n)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (uint64 i = 0; i < n; i++)
	{
		char *email = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2);

		appendStringInfo(&buf, "%s%s (%s)", i ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1),
						 email ? email : "no email");
	}
	return buf.data;
}

/* Users whose id, email or name contain what was asked for, to suggest. */
/* clang-format off */
static const char similar_users_sql[] =
	"SELECT user_id, email FROM seriesweb.users "
	" WHERE strpos(lower(user_id), lower($1)) > 0 "
	"    OR strpos(lower(email), lower($1)) > 0 "
	"    OR strpos(lower(name), lower($1)) > 0 "
	" ORDER BY user_id LIMIT 5";
/* clang-format on */

static void
user_not_found(const char *test_user)
{
	Oid	   argtypes[1] = {TEXTOID};
	Datum  args[1] = {CStringGetTextDatum(test_user)};
	uint64 n;

	SPI_execute_with_args(similar_users_sql, 1, argtypes, args, NULL, true, 0);
	n = SPI_processed;
	ereport(ERROR,
			(errcode(ERRCODE_NO_DATA_FOUND),
			 errmsg("no user has the id, email or name \"%s\"", test_user),
			 n > 0 ? errdetail("Users whose id, email or name contain it: %s.", list_users(n))
				   : errdetail("No user's id, email or name contains it either."),
			 errhint("Pass the user_id, email or exact name of an existing seriesweb.users row.")));
}

/* The test user and its company; up to 5 rows, to list them when ambiguous. */
/* clang-format off */
static const char test_user_sql[] =
	"SELECT u.user_id, u.email, u.name, u.attributes, "
	"       u.company_id, c.name, c.attributes, to_jsonb(u) -> 'tags' "
	"  FROM seriesweb.users u "
	"  LEFT JOIN seriesweb.companies c ON c.company_id = u.company_id "
	" WHERE u.user_id = $1 OR lower(u.email) = lower($1) OR u.name = $1 "
	" ORDER BY u.user_id LIMIT 5";
/* clang-format on */

void
sw_test_user_load(const char *test_user, SwContext *ctx, MemoryContext cxt)
{
	Oid		  argtypes[1] = {TEXTOID};
	Datum	  args[1] = {CStringGetTextDatum(test_user)};
	HeapTuple tup;
	TupleDesc desc;

	if (SPI_execute_with_args(test_user_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "seriesweb: could not look up the test user");
	if (SPI_processed == 0)
		user_not_found(test_user);
	if (SPI_processed > 1)
		ereport(ERROR,
				(errcode(ERRCODE_CARDINALITY_VIOLATION),
				 errmsg("test user \"%s\" is ambiguous: %s%llu users match", test_user,
						SPI_processed == 5 ? "at least " : "", (unsigned long long) SPI_processed),
				 errdetail("Matching users: %s.", list_users(SPI_processed)),
				 errhint("Pass the user_id.")));

	MemoryContextSwitchTo(cxt);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	ctx->user_id = SPI_getvalue(tup, desc, 1);
	sw_ctx_set_user(ctx, tup, desc, 2);
}

/* seriesweb._test_user(test_user): the user_id of the test user, for journey(). */
PG_FUNCTION_INFO_V1(sw_test_user_id);
Datum
sw_test_user_id(PG_FUNCTION_ARGS)
{
	MemoryContext caller = CurrentMemoryContext;
	SwContext	  ctx;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("journey needs a test user"),
				 errhint("Pass the user_id, email or exact name of a seriesweb.users row.")));
	memset(&ctx, 0, sizeof(ctx));
	SPI_connect();
	sw_test_user_load(text_to_cstring(PG_GETARG_TEXT_PP(0)), &ctx, caller);
	SPI_finish();
	PG_RETURN_TEXT_P(cstring_to_text(ctx.user_id));
}
