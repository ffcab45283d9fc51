/*-------------------------------------------------------------------------
 *
 * event_batch.c
 *	  Matching many events of one statement at once, for the usual shape
 *	  of a series: an entry rule followed only by webhooks.
 *
 * Event by event (matcher.c), a COPY of many events that fire costs a few
 * statements per event.  An event fits an event batch when every rule it
 * could reach is the only entry rule of its series and is followed only by
 * webhooks with nothing after them, and no rule armed for a user can wait for
 * an event of its name.  Such events of distinct users are matched together:
 * the rules are reached with one statement, then the webhooks after those
 * reached now, with their deliveries, with another (sw_reach_many and
 * sw_enqueue_many, enqueue.c).  With that shape and distinct users, no event
 * of a batch changes what another matches, and the outcome is the one event
 * by event: the same rows, counts and delivery ids, each row written by the
 * same INSERT .. ON CONFLICT, so concurrent transactions still reach each
 * block at most once per user.  A second event of a user in the batch starts
 * the next batch.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "counters.h"
#include "enqueue.h"
#include "event_batch.h"
#include "filter.h"
#include "text_hash.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

/* Events per event batch at most: bounds its memory and statements. */
#define EVENT_BATCH_MAX 1000

struct SwEventBatch
{
	SwCache		 *cache;
	HTAB		 *counts;
	MemoryContext cxt;	 /* the events and what is matched for them */
	HTAB		 *users; /* user ids of the events (text set); NULL when empty */
	SwContext	 *events;
	int			  n;
	int			  cap;
};

/* The only entry rule of its series, followed only by webhooks that end it. */
static bool
rule_has_event_batch_shape(const SwBlock *rule)
{
	return rule->series->nentry == 1 && sw_block_ends_in_webhooks(rule);
}

bool
sw_event_batch_fits(SwCache *cache, const char *name, uint32 name_hash)
{
	ListCell *lc;

	if (cache->armed_any)
		return false;
	foreach (lc, sw_cache_rules_hashed(cache->armed_by_name, name_hash))
		if (sw_rule_wants(lfirst(lc), name))
			return false;
	foreach (lc, sw_cache_entry_rules(cache, name, name_hash))
		if (!rule_has_event_batch_shape(lfirst(lc)))
			return false;
	return true;
}

SwEventBatch *
sw_event_batch_create(SwCache *cache, HTAB *counts, MemoryContext parent)
{
	SwEventBatch *b = MemoryContextAllocZero(parent, sizeof(SwEventBatch));

	b->cache = cache;
	b->counts = counts;
	b->cxt = AllocSetContextCreate(parent, "seriesweb matcher batch", ALLOCSET_DEFAULT_SIZES);
	sw_event_batch_reset(b);
	return b;
}

/* Nothing is allocated until an event is added: most statements add none. */
void
sw_event_batch_reset(SwEventBatch *b)
{
	MemoryContextReset(b->cxt);
	b->users = NULL;
	b->events = NULL;
	b->n = b->cap = 0;
}

bool
sw_event_batch_takes(SwEventBatch *b, const char *user_id)
{
	text *id;
	bool  found;

	if (b->n == 0)
		return true;
	if (b->users == NULL)
		return strcmp(b->events[0].user_id, user_id) != 0;
	id = cstring_to_text(user_id);
	found = hash_search(b->users, &id, HASH_FIND, NULL) != NULL;
	pfree(id);
	return b->n < EVENT_BATCH_MAX && !found;
}

void
sw_event_batch_add(SwEventBatch *b, const SwContext *event)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	SwContext	 *ctx;

	Assert(b->n < EVENT_BATCH_MAX);
	if (b->n == b->cap)
	{
		b->cap = b->cap == 0 ? 16 : Min(b->cap * 2, EVENT_BATCH_MAX);
		b->events = b->events ? repalloc(b->events, sizeof(SwContext) * b->cap)
							  : palloc(sizeof(SwContext) * b->cap);
	}
	/* A lone event (the usual single-row INSERT) needs no set. */
	if (b->n == 1)
	{
		text *first = cstring_to_text(b->events[0].user_id);

		b->users = sw_text_set_create("seriesweb batch users", b->cxt);
		hash_search(b->users, &first, HASH_ENTER, NULL);
	}
	if (b->users != NULL)
	{
		text *id = cstring_to_text(event->user_id);

		hash_search(b->users, &id, HASH_ENTER, NULL);
	}
	ctx = &b->events[b->n++];
	memset(ctx, 0, sizeof(*ctx));
	ctx->user_id = pstrdup(event->user_id);
	ctx->event_id = event->event_id;
	ctx->event_name = pstrdup(event->event_name);
	ctx->event_occurred_at = event->event_occurred_at;
	ctx->event_props = event->event_props
						   ? (Jsonb *) pg_detoast_datum_copy((struct varlena *) event->event_props)
						   : NULL;
	MemoryContextSwitchTo(old);
}

SwContext *
sw_event_batch_events(SwEventBatch *b, int *n)
{
	*n = b->n;
	return b->events;
}

/* The entry rules each event reaches, in the order matcher.c tries them. */
static SwReach *
matching_entry_rules(SwEventBatch *b, SwLoadUser load, void *arg, int *nrules)
{
	int		 cap = 16;
	SwReach *rules = palloc(sizeof(SwReach) * cap);

	*nrules = 0;
	for (int i = 0; i < b->n; i++)
	{
		SwContext *ctx = &b->events[i];
		ListCell  *lc;

		load(arg, ctx);
		MemoryContextSwitchTo(b->cxt);
		foreach (lc, sw_cache_entry_rules(b->cache, ctx->event_name, sw_name_hash(ctx->event_name)))
		{
			SwBlock *rule = lfirst(lc);

			sw_ctx_at_block(ctx, rule);
			if (!sw_filter_eval(rule->filter, ctx))
				continue;
			if (*nrules == cap)
			{
				cap *= 2;
				rules = repalloc(rules, sizeof(SwReach) * cap);
			}
			rules[*nrules].block = rule;
			rules[*nrules].ctx = ctx;
			(*nrules)++;
		}
	}
	return rules;
}

/*
 * The webhooks after the rules reached now, for the same events; each such
 * rule is counted entered (its series' only entry rule) and reached.
 */
static SwReach *
webhooks_after_reached(SwEventBatch *b, const SwReach *rules, const bool *reached, int nrules,
					   int *nwebhooks)
{
	SwReach *webhooks;

	*nwebhooks = 0;
	for (int r = 0; r < nrules; r++)
		*nwebhooks += reached[r] ? rules[r].block->nnext : 0;
	webhooks = palloc(sizeof(SwReach) * Max(*nwebhooks, 1));
	*nwebhooks = 0;
	for (int r = 0; r < nrules; r++)
	{
		SwBlock *rule = rules[r].block;

		if (!reached[r])
			continue;
		sw_counts_add(b->counts, rule->block_id, rule->series->series_id, 1, 1, 0);
		for (int i = 0; i < rule->nnext; i++)
		{
			webhooks[*nwebhooks].block = rule->next[i];
			webhooks[*nwebhooks].ctx = rules[r].ctx;
			(*nwebhooks)++;
		}
	}
	return webhooks;
}

void
sw_event_batch_match(SwEventBatch *b, SwLoadUser load, void *arg)
{
	MemoryContext old = MemoryContextSwitchTo(b->cxt);
	int			  nrules;
	int			  nwebhooks;
	SwReach		 *rules = matching_entry_rules(b, load, arg, &nrules);
	SwReach		 *webhooks;
	bool		 *reached;

	if (nrules == 0)
	{
		MemoryContextSwitchTo(old);
		return;
	}

	reached = palloc(sizeof(bool) * nrules);
	sw_reach_many(rules, nrules, reached);
	MemoryContextSwitchTo(b->cxt);

	webhooks = webhooks_after_reached(b, rules, reached, nrules, &nwebhooks);
	if (nwebhooks > 0)
		sw_enqueue_many(b->cache, webhooks, nwebhooks, b->counts);
	MemoryContextSwitchTo(old);
}
