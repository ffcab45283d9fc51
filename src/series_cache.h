/*-------------------------------------------------------------------------
 *
 * series_cache.h
 *	  The live series of this database, compiled once per backend: blocks
 *	  with their compiled filters and templates, connections, and indexes by
 *	  event name, so that an event no live rule can match costs one hash
 *	  probe.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SERIES_CACHE_H
#define SERIESWEB_SERIES_CACHE_H

#include "postgres.h"

#include "filter.h"
#include "nodes/pg_list.h"
#include "render.h"
#include "datatype/timestamp.h"
#include "utils/hsearch.h"

typedef struct SwSeries
{
	int32  series_id;
	char  *name;
	int	   nentry; /* entry rules (rules with no block before) */
	int32 *entry_ids;
} SwSeries;

typedef enum SwBlockKind
{
	SW_BLOCK_RULE,
	SW_BLOCK_WEBHOOK,
	SW_BLOCK_WAIT,
	SW_BLOCK_TAG
} SwBlockKind;

typedef struct SwBlock
{
	int32			   block_id;
	SwSeries		  *series;
	SwBlockKind		   kind;
	bool			   is_entry; /* a rule with no block before it */
	char			  *title;
	char			  *event_name; /* rule: NULL matches any event */
	SwFilter		  *filter;	   /* rule */
	SwWebhookTemplate *tmpl;	   /* webhook */
	Interval		  *timer;	   /* wait: its duration; rule: match_within, or NULL */
	char			  *tag;		   /* tag block: the tag it adds, or removes */
	bool			   tag_removes;
	int				   nnext; /* the matched path */
	struct SwBlock	 **next;
	int				   nnot_matched; /* a timed rule's not-matched path */
	struct SwBlock	 **not_matched;
} SwBlock;

/* A list of rules sharing an event-name hash (names compared on use). */
typedef struct SwRuleList
{
	uint32 hash;  /* hash key */
	List  *rules; /* SwBlock * */
} SwRuleList;

typedef struct SwCache
{
	MemoryContext cxt;
	HTAB		 *blocks;			/* block_id -> SwBlock * (live series only) */
	HTAB		 *entry_by_name;	/* name hash -> entry rules with that name */
	List		 *entry_any;		/* entry rules with no event name */
	HTAB		 *armed_by_name;	/* name hash -> non-entry rules with that name */
	bool		  armed_any;		/* some non-entry rule has no event name */
	List		 *timed;			/* waits and timed rules: their users wait in timers */
	Oid			  delivery_seq;		/* sequence of deliveries.delivery_id */
	bool		  has_installation; /* false in a database still at 0.1 */
	bool		  at_0_2;			/* tables with the columns of 0.2 (timers, tags) */
	int64		  installation_id;	/* events carrying another id are restored */
} SwCache;

/* The cache, rebuilt first if definitions changed.  Inside SPI_connect. */
extern SwCache *sw_cache_get(void);

/* Install the invalidation callback; once per backend, at library load. */
extern void sw_cache_register(void);

extern SwBlock *sw_cache_block(SwCache *cache, int32 block_id);
extern uint32	sw_name_hash(const char *name);

/*
 * Rules of map (entry_by_name or armed_by_name) whose event-name hash is
 * hash: a list of SwBlock * that the caller still filters by name, or NIL.
 */
extern List *sw_cache_rules_hashed(HTAB *map, uint32 hash);

/* Point ctx's series and block fields at block (filters and templates read them). */
extern void sw_ctx_at_block(SwContext *ctx, const SwBlock *block);

/* Can an event of this name reach the rule (if its filter holds)? */
extern bool sw_rule_wants(const SwBlock *rule, const char *name);

/*
 * Is every block after block a webhook with nothing after it?  Moving a user
 * past such a block is then only enqueuing deliveries, which can be done for
 * many users with one statement (event_batch.c, release.c).
 */
extern bool sw_block_ends_in_webhooks(const SwBlock *block);

/* The entry rules an event of this name may reach, in the order tried. */
extern List *sw_cache_entry_rules(SwCache *cache, const char *name, uint32 name_hash);

#endif /* SERIESWEB_SERIES_CACHE_H */
