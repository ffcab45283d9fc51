/*-------------------------------------------------------------------------
 *
 * try_webhook.c
 *	  seriesweb.test_webhook() and seriesweb.preview(): try a webhook block
 *	  against a test user before the series goes live.
 *
 * Both resolve the test user (test_user.c: by user_id, email or name; none
 * or several is an error that lists candidates), compile the block and
 * render it for that user with the same code a delivery uses (render.c),
 * and add what the sender adds (User-Agent, signature headers).  preview()
 * stops there; test_webhook() sends the request from the calling backend
 * through the same sender as the worker (timeout, no redirects, http/https
 * only, destination checks), waiting in short slices so that a query cancel
 * or statement_timeout interrupts it at once.  Neither touches the queue or
 * the statistics.  The context has the user and company but no event:
 * event.* attributes are missing (fallbacks apply), and the default
 * payload's delivery_id is 0.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "attrs.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "plans.h"
#include "render.h"
#include "sender.h"
#include "sign.h"
#include "test_user.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

/* A block rendered for a test user, with every header that will be sent. */
typedef struct TestRequest
{
	SwRenderedRequest req;
	char			**headers;
	int				  nheaders;
} TestRequest;

/* Column col of a result row in its text form, as psql shows it; NULL when SQL NULL. */
static char *
column_as_text(HeapTuple tup, TupleDesc desc, int col)
{
	return SPI_getvalue(tup, desc, col);
}

/* clang-format off */
static const char webhook_block_sql[] =
	"SELECT b.kind, b.title, b.method, b.url, b.headers, b.body::text, "
	"       b.secret, s.series_id, s.name "
	"  FROM seriesweb.blocks b JOIN seriesweb.series s ON s.series_id = b.series_id "
	" WHERE b.block_id = $1";
/* clang-format on */

/* The row of webhook_block_sql for the block; an error if it is not a webhook. */
static HeapTuple
read_webhook_block(int32 block_id, TupleDesc *desc)
{
	Oid		  argtypes[1] = {INT4OID};
	Datum	  args[1] = {Int32GetDatum(block_id)};
	HeapTuple tup;

	if (SPI_execute_with_args(webhook_block_sql, 1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "seriesweb: could not read block %d", block_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND), errmsg("block %d does not exist", block_id)));
	tup = SPI_tuptable->vals[0];
	*desc = SPI_tuptable->tupdesc;
	if (strcmp(column_as_text(tup, *desc, 1), "webhook") != 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("block %d is a rule, not a webhook", block_id),
						errhint("Test the webhook block that follows it.")));
	return tup;
}

/* What the worker adds to a rendered request: User-Agent and signature. */
static void
add_sender_headers(TestRequest *tr, const char *secret)
{
	bool has_agent = false;

	tr->nheaders = tr->req.nheaders;
	tr->headers = palloc(sizeof(char *) * (tr->nheaders + 1));
	memcpy(tr->headers, tr->req.headers, sizeof(char *) * tr->nheaders);
	for (int i = 0; i < tr->nheaders; i++)
		has_agent |= pg_strncasecmp(tr->headers[i], "User-Agent:", 11) == 0;
	if (!has_agent)
		tr->headers[tr->nheaders++] = "User-Agent: " SW_USER_AGENT;
	if (secret)
	{
		char *msg_id = psprintf("msg_test_%llx", (unsigned long long) GetCurrentTimestamp());

		tr->headers = sw_sign_headers(secret, msg_id, tr->req.body, tr->req.body_len, tr->headers,
									  &tr->nheaders);
	}
}

/*
 * Load the block and the test user, render, and add the sender's headers.
 * Runs its own SPI connection; everything returned is in the caller's
 * context.
 */
static void
prepare_test_request(int32 block_id, const char *test_user, TestRequest *tr)
{
	MemoryContext	   caller = CurrentMemoryContext;
	HeapTuple		   tup;
	TupleDesc		   desc;
	SwContext		   ctx;
	SwWebhookTemplate *tmpl;
	bool			   isnull;
	char			  *secret;
	char			  *error;

	memset(&ctx, 0, sizeof(ctx));
	SPI_connect();
	tup = read_webhook_block(block_id, &desc);

	MemoryContextSwitchTo(caller);
	ctx.block_id = block_id;
	ctx.block_title = column_as_text(tup, desc, 2);
	ctx.series_id = DatumGetInt32(SPI_getbinval(tup, desc, 8, &isnull));
	ctx.series_name = column_as_text(tup, desc, 9);
	secret = column_as_text(tup, desc, 7);
	tmpl = sw_webhook_compile(column_as_text(tup, desc, 3), column_as_text(tup, desc, 4),
							  DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 5, &isnull)),
							  column_as_text(tup, desc, 6));

	sw_test_user_load(test_user, &ctx, caller);
	memset(&tr->req, 0, sizeof(tr->req));
	error = sw_webhook_render(tmpl, &ctx, 0, &tr->req);
	if (error)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("webhook block %d cannot be sent to user \"%s\": %s", block_id,
							   ctx.user_id, error)));
	add_sender_headers(tr, secret);
	SPI_finish();
}

/* "Name: value" lines as a JSON object; a repeated name keeps the last. */
static Datum
headers_jsonb(char **lines, int n)
{
	JsonbParseState *state = NULL;
	JsonbValue		 v;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < n; i++)
	{
		const char *line = lines[i];
		const char *colon = strchr(line, ':');
		const char *value;
		int			vlen;

		if (colon == NULL)
			continue;
		value = colon + 1;
		while (*value == ' ' || *value == '\t')
			value++;
		vlen = strcspn(value, "\r\n");
		v.type = jbvString;
		v.val.string.val = (char *) line;
		v.val.string.len = colon - line;
		pushJsonbValue(&state, WJB_KEY, &v);
		v.val.string.val = (char *) value;
		v.val.string.len = vlen;
		pushJsonbValue(&state, WJB_VALUE, &v);
	}
	return JsonbPGetDatum(JsonbValueToJsonb(pushJsonbValue(&state, WJB_END_OBJECT, NULL)));
}

static void
require_block_and_user(FunctionCallInfo fcinfo)
{
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("%s needs a block id and a test user",
							   get_func_name(fcinfo->flinfo->fn_oid))));
}

PG_FUNCTION_INFO_V1(sw_preview);
Datum
sw_preview(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	TestRequest tr;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	require_block_and_user(fcinfo);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "seriesweb: preview must return a record");
	prepare_test_request(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), &tr);

	values[0] = CStringGetTextDatum(tr.req.method);
	values[1] = CStringGetTextDatum(tr.req.url);
	values[2] = headers_jsonb(tr.headers, tr.nheaders);
	values[3] = CStringGetTextDatum(tr.req.body);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

static void
note_request_done(SwTransfer *t, void *arg)
{
	*(bool *) arg = true;
}

/* Send one request and wait for it, interruptibly. */
static void
send_and_wait(SwTransfer *t)
{
	SwSender *sender = sw_sender_create();
	bool	  done = false;

	PG_TRY();
	{
		sw_sender_start(sender, t, note_request_done, &done);
		while (!done)
		{
			CHECK_FOR_INTERRUPTS();
			sw_sender_run(sender, 50, note_request_done, &done);
		}
	}
	PG_FINALLY();
	{
		if (!done)
			sw_sender_abort(sender, t);
		sw_sender_destroy(sender);
	}
	PG_END_TRY();
}

/* The response headers collected by the sender, as "Name: value" lines. */
static Datum
response_headers(SwTransfer *t)
{
	char **lines = palloc(sizeof(char *) * (t->response_headers.len / 2 + 1));
	int	   n = 0;
	char  *save;

	for (char *line = strtok_r(t->response_headers.data, "\r\n", &save); line;
		 line = strtok_r(NULL, "\r\n", &save))
		lines[n++] = line;
	return headers_jsonb(lines, n);
}

PG_FUNCTION_INFO_V1(sw_test_webhook);
Datum
sw_test_webhook(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	TestRequest tr;
	SwTransfer *t = palloc0(sizeof(SwTransfer));
	Datum		values[6];
	bool		nulls[6] = {false, false, false, false, false, false};

	require_block_and_user(fcinfo);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "seriesweb: test_webhook must return a record");
	prepare_test_request(PG_GETARG_INT32(0), text_to_cstring(PG_GETARG_TEXT_PP(1)), &tr);

	t->method = tr.req.method;
	t->url = tr.req.url;
	t->headers = tr.headers;
	t->nheaders = tr.nheaders;
	t->body = tr.req.body;
	t->body_len = tr.req.body_len;
	t->keep_headers = true;
	send_and_wait(t);

	values[0] = Int32GetDatum((int32) t->status);
	nulls[0] = t->status == 0;
	values[1] = response_headers(t);
	nulls[1] = t->status == 0;
	values[2] = CStringGetTextDatum(t->response_body.data);
	nulls[2] = t->status == 0;
	values[3] = CStringGetTextDatum(tr.req.body);
	values[4] = Float8GetDatum(t->duration_ms);
	values[5] = t->error ? CStringGetTextDatum(t->error) : (Datum) 0;
	nulls[5] = t->error == NULL;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
