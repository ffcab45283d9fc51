/*-------------------------------------------------------------------------
 *
 * matcher.c
 *	  The events trigger: move users through the live series and enqueue
 *	  webhook deliveries, in the inserting transaction.
 *
 * An AFTER INSERT statement trigger with a transition table, so a COPY or a
 * multi-row INSERT costs one call: first every missing user is created with
 * one statement, then each event is matched in insertion order.  An event
 * whose name no live rule can use costs a hash probe (series_cache.c), made
 * while looking for missing users: a statement of such events ends there.
 * Only the others load the user and company, look up the rules armed for
 * the user, and evaluate filters.  Events of the usual shape (an entry rule
 * before webhooks) wait in an event batch to be matched many at a time
 * (event_batch.c), still in insertion order with respect to the others.
 *
 * Reaching a block is one INSERT .. ON CONFLICT on seriesweb.progress that
 * returns a row only the first time, which makes "each block at most once
 * per user" hold under concurrency too (enqueue.c; for a webhook, sw_enqueue
 * writes it with the delivery, in one statement).  Reaching a block arms the
 * blocks after it: webhooks fire at once, rules wait for a later event of
 * the user, except rules with no event name, checked at once.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "attrs.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "counters.h"
#include "enqueue.h"
#include "event_source.h"
#include "event_batch.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "plans.h"
#include "series_cache.h"
#include "text_hash.h"
#include "users_cache.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

/* A user this statement created: the row as inserted, no need to read it. */
typedef struct CreatedUser
{
	text  *user_id; /* key */
	char  *email;
	char  *name;
	Jsonb *attrs;
	char  *company_id;
} CreatedUser;

/* Everything one trigger call works with. */
typedef struct MatchState
{
	SwCache		 *cache;
	HTAB		 *created; /* CreatedUser by id; NULL when none */
	HTAB		 *counts;
	MemoryContext event_cxt; /* reset for each event */
	SwContext	  ctx;		 /* the current event, user and company */
	uint32		  name_hash;
	SwEventBatch *event_batch; /* events waiting to be matched together */
} MatchState;

/* Run a saved plan, then come back to the event's memory context. */
static uint64
execute_for_event(MatchState *st, SPIPlanPtr plan, Datum *values, const char *nulls, int expected)
{
	uint64 n = sw_execute(plan, values, nulls, false, 0, expected);

	MemoryContextSwitchTo(st->event_cxt);
	return n;
}

/*
 * Was the event in the slot accepted by another installation, that is,
 * loaded from a dump of it?  Then it was matched there, and its users,
 * progress and deliveries are restored with it: it is history, not news.
 */
static bool
restored_event(const SwCache *cache, TupleTableSlot *slot, const SwEventSource *src)
{
	bool isnull;

	if (src->installation_id == 0 || !cache->has_installation)
		return false;
	return DatumGetInt64(slot_getattr(slot, src->installation_id, &isnull)) !=
		   cache->installation_id;
}

static bool event_relevant(SwCache *cache, const char *name, uint32 hash);

/* Could any live rule use the event in the slot (known to be an event)? */
static bool
slot_event_relevant(SwCache *cache, TupleTableSlot *slot, SwEventSource *src)
{
	char *name = sw_event_name(src, slot);
	bool  relevant = event_relevant(cache, name, sw_name_hash(name));

	pfree(name);
	return relevant;
}

/*
 * The users of the events (restored events aside) that this backend does
 * not know to exist (users_cache.c), each once: distinct ids are collected
 * first so a COPY of a million events of a few users sends a few ids.  On
 * the way, *relevant says whether any live rule could use some event, so
 * that a statement of events no rule uses is not read again.
 */
static Datum *
unknown_event_users(SwCache *cache, Tuplestorestate *events, TupleTableSlot *slot,
					SwEventSource *src, MemoryContext cxt, int *n, bool *relevant)
{
	/* A lone row (the usual single-row INSERT) needs no set. */
	HTAB  *seen = tuplestore_tuple_count(events) > 1
					  ? sw_text_set_create("seriesweb event users", cxt)
					  : NULL;
	int	   cap = 16;
	Datum *ids = palloc(sizeof(Datum) * cap);

	*n = 0;
	*relevant = false;
	tuplestore_rescan(events);
	while (tuplestore_gettupleslot(events, true, false, slot))
	{
		bool  found = false;
		text *id;

		if (restored_event(cache, slot, src))
			continue;
		id = sw_event_user_id(src, slot);
		if (id == NULL)
			continue;
		if (!*relevant)
			*relevant = slot_event_relevant(cache, slot, src);

		if (seen != NULL)
			hash_search(seen, &id, HASH_ENTER, &found);
		if (found || sw_user_known(id))
			continue;
		if (*n == cap)
		{
			cap *= 2;
			ids = repalloc(ids, sizeof(Datum) * cap);
		}
		ids[(*n)++] = PointerGetDatum(id);
	}
	return ids;
}

/* Up to this many users created by a statement are kept, not read again. */
#define CREATED_KEEP_MAX 10000

/*
 * Existing users are filtered out before the insert: a row that reaches it
 * costs the table's CHECK constraints, prepared again for each execution,
 * even when ON CONFLICT then skips it.
 */
/* clang-format off */
#define CREATE_USERS_SQL \
	"INSERT INTO seriesweb.users (user_id) SELECT u FROM unnest($1) AS u " \
	" WHERE NOT EXISTS (SELECT FROM seriesweb.users WHERE user_id = u) " \
	"ON CONFLICT (user_id) DO NOTHING"

static const char create_users_sql[] =
	CREATE_USERS_SQL;

static const char create_users_returning_sql[] =
	CREATE_USERS_SQL
	" RETURNING user_id, email, name, attributes, company_id";
/* clang-format on */

static SPIPlanPtr create_users_plan;
static SPIPlanPtr create_users_returning_plan;

/*
 * Insert the n users of ids that do not exist; returns how many rows
 * created are in SPI_tuptable (none beyond CREATED_KEEP_MAX users).
 */
static uint64
insert_missing_users(Datum *ids, int n)
{
	static const Oid argtypes[1] = {TEXTARRAYOID};
	Datum arg = PointerGetDatum(construct_array(ids, n, TEXTOID, -1, false, TYPALIGN_INT));

	if (n > CREATED_KEEP_MAX)
	{
		sw_plan(&create_users_plan, create_users_sql, 1, argtypes);
		sw_execute(create_users_plan, &arg, NULL, false, 0, SPI_OK_INSERT);
		return 0;
	}
	sw_plan(&create_users_returning_plan, create_users_returning_sql, 1, argtypes);
	return sw_execute(create_users_returning_plan, &arg, NULL, false, 0, SPI_OK_INSERT_RETURNING);
}

/* The n rows created, in SPI_tuptable, as CreatedUser by id in cxt. */
static HTAB *
keep_created_users(uint64 n, MemoryContext cxt)
{
	HTAB *created = sw_text_map_create("seriesweb created users", sizeof(CreatedUser), cxt);

	for (uint64 i = 0; i < n; i++)
	{
		HeapTuple	 tup = SPI_tuptable->vals[i];
		TupleDesc	 desc = SPI_tuptable->tupdesc;
		bool		 isnull;
		text		*id = DatumGetTextPCopy(SPI_getbinval(tup, desc, 1, &isnull));
		CreatedUser *u = hash_search(created, &id, HASH_ENTER, NULL);

		u->email = sw_col_text(tup, desc, 2);
		u->name = sw_col_text(tup, desc, 3);
		u->attrs = sw_col_jsonb(tup, desc, 4);
		u->company_id = sw_col_text(tup, desc, 5);
	}
	SPI_freetuptable(SPI_tuptable);
	return created;
}

/*
 * Create the users of all events that do not exist yet, with one
 * statement, unless this backend knows them all.  The rows created are
 * returned (up to CREATED_KEEP_MAX of them), so that matching their events
 * need not read them back.  *relevant: could any live rule use some event?
 */
static HTAB *
create_missing_users(SwCache *cache, Tuplestorestate *events, TupleTableSlot *slot,
					 SwEventSource *src, MemoryContext cxt, bool *relevant)
{
	int	   n;
	Datum *ids = unknown_event_users(cache, events, slot, src, cxt, &n, relevant);
	uint64 created_n;

	if (n == 0)
		return NULL;
	created_n = insert_missing_users(ids, n);
	MemoryContextSwitchTo(cxt);
	for (int i = 0; i < n; i++)
		sw_user_ensured((text *) DatumGetPointer(ids[i]));
	if (created_n == 0)
		return NULL;
	return keep_created_users(created_n, cxt);
}

/* Could any live rule use an event of this name? */
static bool
event_relevant(SwCache *cache, const char *name, uint32 hash)
{
	return cache->entry_any != NIL || cache->armed_any ||
		   sw_cache_rules_hashed(cache->entry_by_name, hash) != NIL ||
		   sw_cache_rules_hashed(cache->armed_by_name, hash) != NIL;
}

static SPIPlanPtr load_user_plan;

/* clang-format off */
static const char load_user_sql[] =
	"SELECT u.email, u.name, u.attributes, u.company_id, c.name, c.attributes "
	"  FROM seriesweb.users u "
	"  LEFT JOIN seriesweb.companies c ON c.company_id = u.company_id "
	" WHERE u.user_id = $1";
/* clang-format on */

/*
 * Load the user and company of ctx->user_id into ctx; a user this statement
 * created with no company is known already.  An SwLoadUser for
 * event_batch.c.
 */
static void
load_user(void *state, SwContext *ctx)
{
	MatchState		*st = state;
	static const Oid argtypes[1] = {TEXTOID};
	Datum			 arg = CStringGetTextDatum(ctx->user_id);
	MemoryContext	 cxt = CurrentMemoryContext;

	if (st->created != NULL)
	{
		text		*id = DatumGetTextPP(arg);
		CreatedUser *u = hash_search(st->created, &id, HASH_FIND, NULL);

		if (u != NULL && u->company_id == NULL)
		{
			ctx->user_email = u->email;
			ctx->user_name = u->name;
			ctx->user_attrs = u->attrs;
			return;
		}
	}

	sw_plan(&load_user_plan, load_user_sql, 1, argtypes);
	sw_execute(load_user_plan, &arg, NULL, false, 0, SPI_OK_SELECT);
	MemoryContextSwitchTo(cxt);
	if (SPI_processed == 1)
		sw_ctx_set_user(ctx, SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	SPI_freetuptable(SPI_tuptable);
}

static SPIPlanPtr armed_plan;

/* clang-format off */
static const char armed_sql[] =
	"SELECT block_id FROM seriesweb.progress WHERE user_id = $1 AND reached_at IS NULL";
/* clang-format on */

/* Rules armed for this user (and live) that this event may reach. */
static List *
armed_rules(MatchState *st)
{
	static const Oid argtypes[1] = {TEXTOID};
	Datum			 arg = CStringGetTextDatum(st->ctx.user_id);
	List			*rules = NIL;
	uint64			 n;

	if (!st->cache->armed_any &&
		sw_cache_rules_hashed(st->cache->armed_by_name, st->name_hash) == NIL)
		return NIL;

	sw_plan(&armed_plan, armed_sql, 1, argtypes);
	n = execute_for_event(st, armed_plan, &arg, NULL, SPI_OK_SELECT);
	for (uint64 i = 0; i < n; i++)
	{
		bool  isnull;
		int32 id =
			DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		SwBlock *b = sw_cache_block(st->cache, id);

		if (b != NULL && !b->is_webhook && sw_rule_wants(b, st->ctx.event_name))
			rules = lappend(rules, b);
	}
	SPI_freetuptable(SPI_tuptable);
	return rules;
}

/* Record that the user reached block; false if they had already. */
static bool
mark_reached(MatchState *st, SwBlock *block)
{
	bool reached = sw_reach(block, &st->ctx);

	MemoryContextSwitchTo(st->event_cxt);
	return reached;
}

static SPIPlanPtr entered_plan;

/* clang-format off */
static const char entered_sql[] =
	"SELECT count(*) FROM seriesweb.progress "
	" WHERE user_id = $1 AND block_id = ANY ($2) AND reached_at IS NOT NULL";
/* clang-format on */

/* Is this the user's first entry rule reached in the block's series? */
static bool
is_first_entry(MatchState *st, SwBlock *block)
{
	static const Oid argtypes[2] = {TEXTOID, INT4ARRAYOID};
	SwSeries		*s = block->series;
	Datum			 values[2];
	Datum			*ids;
	int64			 reached;
	bool			 isnull;

	if (s->nentry <= 1)
		return true;
	ids = palloc(sizeof(Datum) * s->nentry);
	for (int i = 0; i < s->nentry; i++)
		ids[i] = Int32GetDatum(s->entry_ids[i]);
	values[0] = CStringGetTextDatum(st->ctx.user_id);
	values[1] = PointerGetDatum(construct_array(ids, s->nentry, INT4OID, 4, true, TYPALIGN_INT));
	sw_plan(&entered_plan, entered_sql, 2, argtypes);
	execute_for_event(st, entered_plan, values, NULL, SPI_OK_SELECT);
	reached =
		DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
	return reached == 1;
}

static SPIPlanPtr arm_plan;

/* clang-format off */
static const char arm_sql[] =
	"INSERT INTO seriesweb.progress (block_id, user_id) VALUES ($1, $2) "
	"ON CONFLICT (block_id, user_id) DO NOTHING";
/* clang-format on */

/*
 * Arm a rule after a reached block.  True when it is reached at once too: a
 * rule with no event name is checked now.
 */
static bool
arm_rule(MatchState *st, SwBlock *rule)
{
	static const Oid argtypes[2] = {INT4OID, TEXTOID};
	Datum			 values[2];

	values[0] = Int32GetDatum(rule->block_id);
	values[1] = CStringGetTextDatum(st->ctx.user_id);
	sw_plan(&arm_plan, arm_sql, 2, argtypes);
	execute_for_event(st, arm_plan, values, NULL, SPI_OK_INSERT);

	return rule->event_name == NULL && sw_filter_eval(rule->filter, &st->ctx);
}

/* A block to reach, or (a rule after a reached block) to arm first. */
typedef struct ReachStep
{
	SwBlock *block;
	bool	 arm;
} ReachStep;

static List *
push_step(List *stack, SwBlock *block, bool arm_first)
{
	ReachStep *step = palloc(sizeof(ReachStep));

	step->block = block;
	step->arm = arm_first;
	return lappend(stack, step);
}

/*
 * Reach a block, then what it leads to at once, depth first in connection
 * order: webhooks after it fire, rules after it are armed (and reached if
 * they need no event).  An explicit stack rather than recursion: a series
 * may be a chain of thousands of blocks, and running out of C stack would
 * fail the application's INSERT.
 */
static void
reach_and_follow(MatchState *st, SwBlock *first)
{
	List *stack = push_step(NIL, first, false);

	while (stack != NIL)
	{
		ReachStep *step = llast(stack);
		SwBlock	  *block = step->block;

		stack = list_delete_last(stack);
		CHECK_FOR_INTERRUPTS();
		if (step->arm && !arm_rule(st, block))
			continue;
		if (block->is_webhook)
		{
			bool fired;

			st->ctx.series_id = block->series->series_id;
			st->ctx.series_name = block->series->name;
			st->ctx.block_id = block->block_id;
			st->ctx.block_title = block->title;
			fired = sw_enqueue(st->cache, block, &st->ctx, st->counts);
			MemoryContextSwitchTo(st->event_cxt);
			if (!fired)
				continue;
		}
		else if (!mark_reached(st, block))
			continue;
		sw_counts_add(st->counts, block->block_id, block->series->series_id,
					  block->is_entry && is_first_entry(st, block) ? 1 : 0, 1, 0);
		/* pushed last first, so that the first connection is followed first */
		for (int i = block->nnext - 1; i >= 0; i--)
			stack = push_step(stack, block->next[i], !block->next[i]->is_webhook);
	}
}

/* Match one event whose name some live rule may use. */
static void
match_event(MatchState *st)
{
	List	 *candidates;
	ListCell *lc;

	load_user(st, &st->ctx);

	candidates = sw_cache_entry_rules(st->cache, st->ctx.event_name, st->name_hash);
	/* Fetched before any reach: rules armed by this event wait for the next. */
	candidates = list_concat(candidates, armed_rules(st));

	foreach (lc, candidates)
	{
		SwBlock *rule = lfirst(lc);

		if (sw_filter_eval(rule->filter, &st->ctx))
			reach_and_follow(st, rule);
	}
}

/*
 * Match the events waiting in the event batch (event_batch.c), and empty
 * it; a lone event takes the usual path, which needs no arrays.
 */
static void
match_event_batch(MatchState *st)
{
	int		   n;
	SwContext *events = sw_event_batch_events(st->event_batch, &n);

	if (n == 1)
	{
		SwContext current = st->ctx;
		uint32	  current_hash = st->name_hash;

		st->ctx = events[0];
		st->name_hash = sw_name_hash(st->ctx.event_name);
		match_event(st);
		st->ctx = current;
		st->name_hash = current_hash;
	}
	else if (n > 1)
		sw_event_batch_match(st->event_batch, load_user, st);
	if (n > 0)
		sw_event_batch_reset(st->event_batch);
	MemoryContextSwitchTo(st->event_cxt);
}

/*
 * Set st->ctx to the event in the slot, in the event's context; false if it
 * is restored, is no event, or no live rule can use its name.
 */
static bool
read_event(MatchState *st, TupleTableSlot *slot, SwEventSource *src)
{
	char *name;
	text *user_id;

	if (restored_event(st->cache, slot, src))
		return false;

	name = sw_event_name(src, slot);
	if (name == NULL)
		return false;
	st->name_hash = sw_name_hash(name);
	if (!event_relevant(st->cache, name, st->name_hash))
		return false;
	user_id = sw_event_user_id(src, slot);
	if (user_id == NULL)
		return false;

	memset(&st->ctx, 0, sizeof(st->ctx));
	st->ctx.event_name = name;
	st->ctx.user_id = text_to_cstring(user_id);
	sw_event_read(src, slot, &st->ctx);
	return true;
}

/*
 * Match the event of st->ctx, or add it to the event batch when it fits,
 * matching the batch first if it cannot take it.
 */
static void
match_or_add_to_event_batch(MatchState *st)
{
	if (sw_event_batch_fits(st->cache, st->ctx.event_name, st->name_hash))
	{
		if (!sw_event_batch_takes(st->event_batch, st->ctx.user_id))
			match_event_batch(st);
		sw_event_batch_add(st->event_batch, &st->ctx);
		return;
	}
	/* In insertion order: the events waiting in the event batch first. */
	match_event_batch(st);
	match_event(st);
}

static void
match_all(MatchState *st, Tuplestorestate *events, TupleTableSlot *slot, SwEventSource *src)
{
	MemoryContext read_cxt = CurrentMemoryContext;

	tuplestore_rescan(events);
	for (;;)
	{
		/*
		 * Read in the statement's context, not the event's: a transition
		 * table that spilled to disk (more than work_mem of events) pallocs
		 * each tuple it reads, and the event context is reset right after.
		 */
		MemoryContextSwitchTo(read_cxt);
		if (!tuplestore_gettupleslot(events, true, false, slot))
			break;
		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(st->event_cxt);
		MemoryContextSwitchTo(st->event_cxt);
		if (read_event(st, slot, src))
			match_or_add_to_event_batch(st);
	}
	match_event_batch(st);
}

static void
check_called_as_insert_trigger(FunctionCallInfo fcinfo, const char *function)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event) || trigdata->tg_newtable == NULL)
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("%s must be an AFTER INSERT statement trigger with a NEW TABLE",
							   function)));
}

/* Match the statement's events, counting, when a live rule may use one. */
static void
match_statement(MatchState *st, Tuplestorestate *events, TupleTableSlot *slot, SwEventSource *src,
				MemoryContext stmt_cxt)
{
	st->counts = sw_counts_create(stmt_cxt);
	st->event_cxt =
		AllocSetContextCreate(stmt_cxt, "seriesweb matcher event", ALLOCSET_DEFAULT_SIZES);
	st->event_batch = sw_event_batch_create(st->cache, st->counts, stmt_cxt);
	match_all(st, events, slot, src);
	MemoryContextSwitchTo(stmt_cxt);
	sw_counts_flush(st->counts);
}

/*
 * The rows the trigger's statement inserted, as events: users created,
 * then events matched.  From seriesweb.events, or from a watched table
 * whose trigger arguments say which column holds what.
 */
static void
match_inserted_rows(TriggerData *trigdata, bool watched)
{
	Relation		 rel = trigdata->tg_relation;
	Tuplestorestate *events = trigdata->tg_newtable;
	SwEventSource	 src;
	TupleTableSlot	*slot;
	MatchState		 st;
	MemoryContext	 stmt_cxt;
	MemoryContext	 caller_cxt = CurrentMemoryContext;
	bool			 relevant;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "seriesweb: SPI_connect failed");

	stmt_cxt =
		AllocSetContextCreate(CurrentMemoryContext, "seriesweb matcher", ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(stmt_cxt);
	sw_event_source_of(&src, trigdata, watched, stmt_cxt);
	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsMinimalTuple);

	memset(&st, 0, sizeof(st));
	st.cache = sw_cache_get();
	MemoryContextSwitchTo(stmt_cxt);
	st.created = create_missing_users(st.cache, events, slot, &src, stmt_cxt, &relevant);
	if (relevant)
		match_statement(&st, events, slot, &src, stmt_cxt);

	ExecDropSingleTupleTableSlot(slot);
	MemoryContextSwitchTo(caller_cxt);
	SPI_finish();
}

/* The trigger of seriesweb.events. */
PG_FUNCTION_INFO_V1(sw_match_events);
Datum
sw_match_events(PG_FUNCTION_ARGS)
{
	check_called_as_insert_trigger(fcinfo, "seriesweb._match_events()");
	match_inserted_rows((TriggerData *) fcinfo->context, false);
	return PointerGetDatum(NULL);
}

/* The trigger of a table watched with seriesweb.watch() (watch.c). */
PG_FUNCTION_INFO_V1(sw_match_watched);
Datum
sw_match_watched(PG_FUNCTION_ARGS)
{
	check_called_as_insert_trigger(fcinfo, "seriesweb._match_watched()");
	match_inserted_rows((TriggerData *) fcinfo->context, true);
	return PointerGetDatum(NULL);
}
