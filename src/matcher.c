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
 * A rule the event satisfies is reached, and the user moves on through the
 * series (advance.c, which a timer that falls due also uses).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "advance.h"
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
#include "users_index.h"
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

/*
 * Everything one trigger call works with.  adv holds the cache, the
 * counters, the current event, user and company, and the event's memory
 * context (reset for each event).
 */
typedef struct MatchState
{
	SwAdvance	  adv;
	HTAB		 *created; /* CreatedUser by id; NULL when none */
	uint32		  name_hash;
	SwEventBatch *event_batch; /* events waiting to be matched together */
} MatchState;

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
 * Only ids the primary key does not hold reach it (users_index.c): a row
 * that does costs the table's CHECK constraints, prepared again for each
 * execution, even when ON CONFLICT (a concurrent creator) then skips it.
 */
/* clang-format off */
#define CREATE_USERS_SQL \
	"INSERT INTO seriesweb.users (user_id) SELECT u FROM unnest($1) AS u " \
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
	Datum *missing;
	int	   nmissing;
	uint64 created_n = 0;

	if (n == 0)
		return NULL;
	missing = palloc(sizeof(Datum) * n);
	memcpy(missing, ids, sizeof(Datum) * n);
	nmissing = sw_users_index_missing(missing, n);
	if (nmissing > 0)
		created_n = insert_missing_users(missing, nmissing);
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

/*
 * Load the user and company of ctx->user_id into ctx; a user this statement
 * created with no company is known already.  An SwLoadUser for
 * event_batch.c.
 */
static void
load_user(void *state, SwContext *ctx)
{
	MatchState *st = state;

	if (st->created != NULL)
	{
		text		*id = cstring_to_text(ctx->user_id);
		CreatedUser *u = hash_search(st->created, &id, HASH_FIND, NULL);

		if (u != NULL && u->company_id == NULL)
		{
			ctx->user_email = u->email;
			ctx->user_name = u->name;
			ctx->user_attrs = u->attrs;
			ctx->user_tags = st->adv.cache->at_0_2 ? sw_jsonb_empty_array() : NULL;
			return;
		}
	}
	sw_advance_load_user(st->adv.cache, ctx);
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
	SwAdvance		*a = &st->adv;
	Datum			 arg = CStringGetTextDatum(a->ctx.user_id);
	List			*rules = NIL;
	uint64			 n;

	if (!a->cache->armed_any &&
		sw_cache_rules_hashed(a->cache->armed_by_name, st->name_hash) == NIL)
		return NIL;

	sw_plan(&armed_plan, armed_sql, 1, argtypes);
	n = sw_execute(armed_plan, &arg, NULL, false, 0, SPI_OK_SELECT);
	MemoryContextSwitchTo(a->cxt);
	for (uint64 i = 0; i < n; i++)
	{
		bool  isnull;
		int32 id =
			DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		SwBlock *b = sw_cache_block(a->cache, id);

		if (b != NULL && b->kind == SW_BLOCK_RULE && sw_rule_wants(b, a->ctx.event_name))
			rules = lappend(rules, b);
	}
	SPI_freetuptable(SPI_tuptable);
	return rules;
}

/* Match one event whose name some live rule may use. */
static void
match_event(MatchState *st)
{
	SwAdvance *a = &st->adv;
	List	  *candidates;
	ListCell  *lc;

	load_user(st, &a->ctx);

	candidates = sw_cache_entry_rules(a->cache, a->ctx.event_name, st->name_hash);
	/* Fetched before any reach: rules armed by this event wait for the next. */
	candidates = list_concat(candidates, armed_rules(st));

	foreach (lc, candidates)
	{
		SwBlock *rule = lfirst(lc);

		sw_ctx_at_block(&a->ctx, rule);
		if (sw_filter_eval(rule->filter, &a->ctx))
			sw_advance_reach(a, rule);
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
		SwContext current = st->adv.ctx;
		uint32	  current_hash = st->name_hash;

		st->adv.ctx = events[0];
		st->name_hash = sw_name_hash(st->adv.ctx.event_name);
		match_event(st);
		st->adv.ctx = current;
		st->name_hash = current_hash;
	}
	else if (n > 1)
		sw_event_batch_match(st->event_batch, load_user, st);
	if (n > 0)
		sw_event_batch_reset(st->event_batch);
	MemoryContextSwitchTo(st->adv.cxt);
}

/*
 * Set st->adv.ctx to the event in the slot, in the event's context; false if it
 * is restored, is no event, or no live rule can use its name.
 */
static bool
read_event(MatchState *st, TupleTableSlot *slot, SwEventSource *src)
{
	char *name;
	text *user_id;

	if (restored_event(st->adv.cache, slot, src))
		return false;

	name = sw_event_name(src, slot);
	if (name == NULL)
		return false;
	st->name_hash = sw_name_hash(name);
	if (!event_relevant(st->adv.cache, name, st->name_hash))
		return false;
	user_id = sw_event_user_id(src, slot);
	if (user_id == NULL)
		return false;

	memset(&st->adv.ctx, 0, sizeof(st->adv.ctx));
	st->adv.ctx.event_name = name;
	st->adv.ctx.user_id = text_to_cstring(user_id);
	sw_event_read(src, slot, &st->adv.ctx);
	return true;
}

/*
 * Match the event of st->adv.ctx, or add it to the event batch when it fits,
 * matching the batch first if it cannot take it.
 */
static void
match_or_add_to_event_batch(MatchState *st)
{
	if (sw_event_batch_fits(st->adv.cache, st->adv.ctx.event_name, st->name_hash))
	{
		if (!sw_event_batch_takes(st->event_batch, st->adv.ctx.user_id))
			match_event_batch(st);
		sw_event_batch_add(st->event_batch, &st->adv.ctx);
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
		MemoryContextReset(st->adv.cxt);
		MemoryContextSwitchTo(st->adv.cxt);
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
	st->adv.counts = sw_counts_create(stmt_cxt);
	st->adv.cxt =
		AllocSetContextCreate(stmt_cxt, "seriesweb matcher event", ALLOCSET_DEFAULT_SIZES);
	st->event_batch = sw_event_batch_create(st->adv.cache, st->adv.counts, stmt_cxt);
	match_all(st, events, slot, src);
	MemoryContextSwitchTo(stmt_cxt);
	sw_counts_flush(st->adv.counts);
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
	st.adv.cache = sw_cache_get();
	MemoryContextSwitchTo(stmt_cxt);
	st.created = create_missing_users(st.adv.cache, events, slot, &src, stmt_cxt, &relevant);
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
