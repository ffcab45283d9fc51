/*-------------------------------------------------------------------------
 *
 * series_cache.c
 *	  Compile the live series of this database once per backend and keep
 *	  them until a definition changes.
 *
 * Statement triggers on series, blocks and connections (sw_definitions_
 * changed) send a relcache invalidation for the changed table; a relcache
 * callback registered at library load marks the cache stale, and the next
 * event rebuilds it.  Invalidations are transactional: other backends see
 * them when the change commits, this backend at its next command, and a
 * rolled-back change leaves the cache as it was.
 *
 * The cache is built in a context under the current transaction and moved
 * under CacheMemoryContext only once complete, so an error halfway leaks
 * nothing.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "plans.h"
#include "series_cache.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "wake.h"

static SwCache *cache = NULL;
static bool		cache_valid = false;
static Oid		watched_relids[3];

typedef struct BlockEntry
{
	int32	 block_id;
	SwBlock *block;
} BlockEntry;

static void
mark_cache_stale(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == watched_relids[0] || relid == watched_relids[1] ||
		relid == watched_relids[2])
		cache_valid = false;
}

void
sw_cache_register(void)
{
	CacheRegisterRelcacheCallback(mark_cache_stale, (Datum) 0);
}

uint32
sw_name_hash(const char *name)
{
	return hash_bytes((const unsigned char *) name, strlen(name));
}

static HTAB *
create_blob_map(MemoryContext cxt, const char *what, Size keysize, Size entrysize)
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = cxt;
	return hash_create(what, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * Run a query for the cache under construction.  SPI leaves its own
 * context current after every call, so switch back: everything kept must
 * be allocated in the cache's context.
 */
static void
cache_query(SwCache *c, const char *sql, const char *what)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "seriesweb: could not read %s", what);
	MemoryContextSwitchTo(c->cxt);
}

/* The tables whose changes invalidate the cache, and the deliveries' sequence. */
/* clang-format off */
static const char relids_sql[] =
	"SELECT 'seriesweb.series'::regclass::oid, 'seriesweb.blocks'::regclass::oid, "
	"'seriesweb.connections'::regclass::oid, "
	"pg_get_serial_sequence('seriesweb.deliveries', 'delivery_id')::regclass::oid";
/* clang-format on */

static void
load_relids(SwCache *c)
{
	HeapTuple tup;
	TupleDesc desc;
	bool	  isnull;

	cache_query(c, relids_sql, "its own tables");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	for (int i = 0; i < 3; i++)
		watched_relids[i] = DatumGetObjectId(SPI_getbinval(tup, desc, i + 1, &isnull));
	c->delivery_seq = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/* clang-format off */
static const char installation_sql[] =
	"SELECT installation_id FROM seriesweb.installation";
/* clang-format on */

/*
 * The id of this installation, which new events carry (0.2 on; a database
 * still at 0.1 has none, and all its events are its own), and whether the
 * tables have the columns of timed blocks (0.2 on too).
 */
static void
load_installation(SwCache *c)
{
	bool isnull;
	Oid	 schema = get_namespace_oid("seriesweb", false);

	c->at_0_2 = OidIsValid(get_relname_relid("timers", schema));
	if (!OidIsValid(get_relname_relid("installation", schema)))
		return;
	cache_query(c, installation_sql, "the installation id");
	c->has_installation = SPI_processed == 1;
	if (c->has_installation)
		c->installation_id =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);
}

/*
 * The blocks of the live series, each with its series, its kind, and
 * whether no connection leads to it (an entry rule).  A database still at
 * 0.1 (its update pending) has no timed blocks.
 */
/* clang-format off */
#define LIVE_BLOCKS_SQL(columns_0_2) \
	"SELECT b.block_id, b.series_id, s.name, b.kind, b.title, " \
	"       b.event_name, b.filters, b.method, b.url, b.headers, b.body::text, " \
	"       NOT EXISTS (SELECT 1 FROM seriesweb.connections c WHERE c.to_block = b.block_id), " \
	columns_0_2 \
	"  FROM seriesweb.blocks b JOIN seriesweb.series s ON s.series_id = b.series_id " \
	" WHERE s.state = 'live' ORDER BY b.series_id, b.block_id"

static const char live_blocks_sql[] =
	LIVE_BLOCKS_SQL("coalesce(b.duration, b.match_within), b.tag, b.tag_action = 'remove'");
static const char live_blocks_0_1_sql[] =
	LIVE_BLOCKS_SQL("NULL::interval, NULL::text, false");
/* clang-format on */

static SwBlockKind
block_kind(const char *kind)
{
	if (strcmp(kind, "webhook") == 0)
		return SW_BLOCK_WEBHOOK;
	if (strcmp(kind, "wait") == 0)
		return SW_BLOCK_WAIT;
	if (strcmp(kind, "tag") == 0)
		return SW_BLOCK_TAG;
	return SW_BLOCK_RULE;
}

/* One row of live_blocks_sql, compiled. */
static SwBlock *
compile_block(HeapTuple tup, TupleDesc desc, SwSeries *series)
{
	SwBlock *b = palloc0(sizeof(SwBlock));
	bool	 isnull;
	Datum	 timer;

	b->block_id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	b->series = series;
	b->kind = block_kind(sw_col_text(tup, desc, 4));
	b->title = sw_col_text(tup, desc, 5);
	b->is_entry = b->kind == SW_BLOCK_RULE && DatumGetBool(SPI_getbinval(tup, desc, 12, &isnull));
	timer = SPI_getbinval(tup, desc, 13, &isnull);
	if (!isnull)
		b->timer = DatumGetIntervalP(datumCopy(timer, false, sizeof(Interval)));
	if (b->kind == SW_BLOCK_WEBHOOK)
	{
		Datum headers = SPI_getbinval(tup, desc, 10, &isnull);

		b->tmpl = sw_webhook_compile(sw_col_text(tup, desc, 8), sw_col_text(tup, desc, 9),
									 DatumGetJsonbP(headers), sw_col_text(tup, desc, 11));
	}
	else if (b->kind == SW_BLOCK_RULE)
	{
		b->event_name = sw_col_text(tup, desc, 6);
		b->filter = sw_filter_compile(DatumGetJsonbP(SPI_getbinval(tup, desc, 7, &isnull)));
	}
	else if (b->kind == SW_BLOCK_TAG)
	{
		b->tag = sw_col_text(tup, desc, 14);
		b->tag_removes = DatumGetBool(SPI_getbinval(tup, desc, 15, &isnull));
	}
	return b;
}

static void
index_rule(HTAB *map, SwBlock *rule)
{
	uint32		hash = sw_name_hash(rule->event_name);
	bool		found;
	SwRuleList *entry = hash_search(map, &hash, HASH_ENTER, &found);

	if (!found)
		entry->rules = NIL;
	entry->rules = lappend(entry->rules, rule);
}

/* A series met in live_blocks_sql, with room for its remaining rows' entry ids. */
static SwSeries *
new_series(HeapTuple tup, TupleDesc desc, int32 series_id, uint64 rows_left)
{
	SwSeries *series = palloc0(sizeof(SwSeries));

	series->series_id = series_id;
	series->name = sw_col_text(tup, desc, 3);
	series->entry_ids = palloc(sizeof(int32) * rows_left);
	return series;
}

/* Make a compiled block findable: by id, and a rule by the events it waits for. */
static void
index_block(SwCache *c, SwSeries *series, SwBlock *b)
{
	BlockEntry *entry = hash_search(c->blocks, &b->block_id, HASH_ENTER, NULL);

	entry->block = b;
	if (b->timer != NULL)
		c->timed = lappend(c->timed, b);
	if (b->kind != SW_BLOCK_RULE)
		return;
	if (b->is_entry)
		series->entry_ids[series->nentry++] = b->block_id;
	if (b->event_name == NULL && b->is_entry)
		c->entry_any = lappend(c->entry_any, b);
	else if (b->event_name == NULL)
		c->armed_any = true;
	else
		index_rule(b->is_entry ? c->entry_by_name : c->armed_by_name, b);
}

static void
load_blocks(SwCache *c)
{
	SwSeries *series = NULL;

	cache_query(c, c->at_0_2 ? live_blocks_sql : live_blocks_0_1_sql, "the live series");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;
		int32	  series_id = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));

		if (series == NULL || series->series_id != series_id)
			series = new_series(tup, desc, series_id, SPI_processed - i);
		index_block(c, series, compile_block(tup, desc, series));
	}
	SPI_freetuptable(SPI_tuptable);
}

/* The connections between the blocks of the live series, and their paths. */
/* clang-format off */
#define LIVE_CONNECTIONS_SQL(not_matched) \
	"SELECT c.from_block, c.to_block, " not_matched " FROM seriesweb.connections c " \
	"  JOIN seriesweb.blocks b ON b.block_id = c.from_block " \
	"  JOIN seriesweb.series s ON s.series_id = b.series_id " \
	" WHERE s.state = 'live' ORDER BY c.from_block, c.to_block"

static const char live_connections_sql[] =
	LIVE_CONNECTIONS_SQL("c.path = 'not_matched'");
static const char live_connections_0_1_sql[] =
	LIVE_CONNECTIONS_SQL("false");
/* clang-format on */

/* Add to a block's path; room for as many as the connections left to read. */
static void
add_to_path(SwBlock ***path, int *n, SwBlock *to, uint64 rows_left)
{
	if (*path == NULL)
		*path = palloc(sizeof(SwBlock *) * rows_left);
	(*path)[(*n)++] = to;
}

static void
load_connections(SwCache *c)
{
	cache_query(c, c->at_0_2 ? live_connections_sql : live_connections_0_1_sql,
				"the connections of the live series");

	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple tup = SPI_tuptable->vals[i];
		TupleDesc desc = SPI_tuptable->tupdesc;
		bool	  isnull;
		SwBlock	 *fb = sw_cache_block(c, DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull)));
		SwBlock	 *tb = sw_cache_block(c, DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull)));

		if (fb == NULL || tb == NULL)
			continue;
		if (DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull)))
			add_to_path(&fb->not_matched, &fb->nnot_matched, tb, SPI_processed - i);
		else
			add_to_path(&fb->next, &fb->nnext, tb, SPI_processed - i);
	}
	SPI_freetuptable(SPI_tuptable);
}

static SwCache *
build_cache(void)
{
	MemoryContext cxt = AllocSetContextCreate(CurTransactionContext, "seriesweb series cache",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	SwCache		 *c = palloc0(sizeof(SwCache));

	c->cxt = cxt;
	c->blocks = create_blob_map(cxt, "seriesweb blocks", sizeof(int32), sizeof(BlockEntry));
	c->entry_by_name =
		create_blob_map(cxt, "seriesweb entry rules", sizeof(uint32), sizeof(SwRuleList));
	c->armed_by_name =
		create_blob_map(cxt, "seriesweb later rules", sizeof(uint32), sizeof(SwRuleList));
	load_relids(c);
	load_installation(c);
	load_blocks(c);
	load_connections(c);
	MemoryContextSwitchTo(old);
	return c;
}

SwCache *
sw_cache_get(void)
{
	SwCache *fresh;

	if (cache_valid && cache != NULL)
		return cache;

	/* Set first: an invalidation that arrives while we read wins. */
	cache_valid = true;
	PG_TRY();
	{
		fresh = build_cache();
	}
	PG_CATCH();
	{
		cache_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSetParent(fresh->cxt, CacheMemoryContext);
	if (cache != NULL)
		MemoryContextDelete(cache->cxt);
	cache = fresh;
	return cache;
}

SwBlock *
sw_cache_block(SwCache *c, int32 block_id)
{
	BlockEntry *entry = hash_search(c->blocks, &block_id, HASH_FIND, NULL);

	return entry ? entry->block : NULL;
}

List *
sw_cache_rules_hashed(HTAB *map, uint32 hash)
{
	SwRuleList *entry = hash_search(map, &hash, HASH_FIND, NULL);

	return entry ? entry->rules : NIL;
}

void
sw_ctx_at_block(SwContext *ctx, const SwBlock *block)
{
	ctx->series_id = block->series->series_id;
	ctx->series_name = block->series->name;
	ctx->block_id = block->block_id;
	ctx->block_title = block->title;
}

bool
sw_rule_wants(const SwBlock *rule, const char *name)
{
	return rule->event_name == NULL || strcmp(rule->event_name, name) == 0;
}

bool
sw_block_ends_in_webhooks(const SwBlock *block)
{
	for (int i = 0; i < block->nnext; i++)
		if (block->next[i]->kind != SW_BLOCK_WEBHOOK || block->next[i]->nnext > 0)
			return false;
	return true;
}

List *
sw_cache_entry_rules(SwCache *cache, const char *name, uint32 name_hash)
{
	List	 *rules = NIL;
	ListCell *lc;

	foreach (lc, sw_cache_rules_hashed(cache->entry_by_name, name_hash))
		if (sw_rule_wants(lfirst(lc), name))
			rules = lappend(rules, lfirst(lc));
	return list_concat(rules, cache->entry_any);
}

PG_FUNCTION_INFO_V1(sw_definitions_changed);
Datum
sw_definitions_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("seriesweb._definitions_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	/* A series that goes live may have timers due: the worker looks again. */
	sw_wake_for_timer_at_commit(DT_NOBEGIN);
	return PointerGetDatum(NULL);
}
