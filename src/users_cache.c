/*-------------------------------------------------------------------------
 *
 * users_cache.c
 *	  Per-backend set of user ids known to exist.
 *
 * Every event statement must create the users it names that do not exist
 * yet.  Most events come from known users, and asking the database costs an
 * INSERT ... ON CONFLICT per statement; this set answers instead.  An id
 * is known to the transaction that ensured it at once, and to later ones
 * only once it commits (a rollback, or a rolled-back savepoint, may undo
 * the creation, and then the pending ids are forgotten).  Any
 * DELETE, TRUNCATE or change of user_id on seriesweb.users sends a relcache
 * invalidation (sw_users_changed) that empties the set in every backend, so
 * a deleted user is created again by its next event.  The set only ever
 * says "exists"; a miss just asks the database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "users_cache.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Past this many ids the set starts over, to bound its memory. */
#define KNOWN_USERS_MAX 65536

static MemoryContext known_cxt = NULL;
static HTAB			*known = NULL;
static Oid			 users_relid = InvalidOid;

/* Ids this transaction ensured: known within it, and to all once it commits. */
static MemoryContext pending_cxt = NULL;
static HTAB			*pending = NULL;

static uint32
text_key_hash(const void *key, Size keysize)
{
	const text *t = *(text *const *) key;

	return hash_bytes((const unsigned char *) VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

static int
text_key_match(const void *a, const void *b, Size keysize)
{
	const text *x = *(text *const *) a;
	const text *y = *(text *const *) b;

	return VARSIZE_ANY_EXHDR(x) == VARSIZE_ANY_EXHDR(y) &&
				   memcmp(VARDATA_ANY(x), VARDATA_ANY(y), VARSIZE_ANY_EXHDR(x)) == 0
			   ? 0
			   : 1;
}

HTAB *
sw_text_set_create(const char *name, MemoryContext cxt)
{
	return sw_text_map_create(name, sizeof(text *), cxt);
}

HTAB *
sw_text_map_create(const char *name, Size entrysize, MemoryContext cxt)
{
	HASHCTL ctl;

	Assert(entrysize >= sizeof(text *));
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(text *);
	ctl.entrysize = entrysize;
	ctl.hash = text_key_hash;
	ctl.match = text_key_match;
	ctl.hcxt = cxt;
	return hash_create(name, 256, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static void
forget_pending(void)
{
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	pending = NULL;
}

/* Start the set over, empty. */
static void
reset_known(void)
{
	if (known_cxt == NULL)
		known_cxt = AllocSetContextCreate(TopMemoryContext, "seriesweb known users",
										  ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(known_cxt);
	known = sw_text_set_create("seriesweb known users", known_cxt);
}

/*
 * The users table changed (or was dropped): forget the set, and which table
 * it was, so that a recreated extension is watched too.
 */
static void
users_changed_cb(Datum arg, Oid relid)
{
	if (known != NULL && (relid == InvalidOid || relid == users_relid))
	{
		reset_known();
		known = NULL;
		forget_pending();
	}
}

static void
users_xact_cb(XactEvent event, void *arg)
{
	HASH_SEQ_STATUS seq;
	text		  **id;

	if (pending == NULL)
		return;
	if ((event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) && known != NULL)
	{
		if (hash_get_num_entries(known) + hash_get_num_entries(pending) > KNOWN_USERS_MAX)
			reset_known();
		hash_seq_init(&seq, pending);
		while ((id = hash_seq_search(&seq)) != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(known_cxt);
			text		 *copy = (text *) pg_detoast_datum_copy((struct varlena *) *id);

			MemoryContextSwitchTo(old);
			hash_search(known, &copy, HASH_ENTER, NULL);
		}
		forget_pending();
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			 event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		forget_pending();
}

static void
users_subxact_cb(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid,
				 void *arg)
{
	/* Which ids the savepoint created is not tracked: forget them all. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_pending();
}

void
sw_users_cache_register(void)
{
	CacheRegisterRelcacheCallback(users_changed_cb, (Datum) 0);
	RegisterXactCallback(users_xact_cb, NULL);
	RegisterSubXactCallback(users_subxact_cb, NULL);
}

bool
sw_user_known(const text *user_id)
{
	if (known == NULL)
	{
		/* First use, inside a transaction: learn which table to watch. */
		Oid nsp = get_namespace_oid("seriesweb", false);

		users_relid = get_relname_relid("users", nsp);
		reset_known();
	}
	return hash_search(known, &user_id, HASH_FIND, NULL) != NULL ||
		   (pending != NULL && hash_search(pending, &user_id, HASH_FIND, NULL) != NULL);
}

void
sw_user_ensured(const text *user_id)
{
	MemoryContext old;
	text		 *copy;
	bool		  found;

	if (pending == NULL)
	{
		if (pending_cxt == NULL)
			pending_cxt = AllocSetContextCreate(TopMemoryContext, "seriesweb users ensured",
												ALLOCSET_DEFAULT_SIZES);
		pending = sw_text_set_create("seriesweb users ensured", pending_cxt);
	}
	/* A COPY of a million new users: keep the first ones, forget the rest. */
	if (hash_get_num_entries(pending) >= KNOWN_USERS_MAX)
		return;
	old = MemoryContextSwitchTo(pending_cxt);
	copy = (text *) pg_detoast_datum_copy((struct varlena *) user_id);
	MemoryContextSwitchTo(old);
	hash_search(pending, &copy, HASH_ENTER, &found);
}

PG_FUNCTION_INFO_V1(sw_users_changed);
Datum
sw_users_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("seriesweb._users_changed() must be called as a trigger")));
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
