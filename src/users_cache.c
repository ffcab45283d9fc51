/*-------------------------------------------------------------------------
 *
 * users_cache.c
 *	  User ids known to exist, shared by every backend.
 *
 * Every event statement must create the users it names that do not exist
 * yet.  Most events come from known users, and asking the database costs an
 * INSERT ... SELECT per statement; this set answers instead.  It lives in
 * shared memory (seriesweb.known_users entries, set-associative: an id
 * hashes to a set of SET_WAYS slots and may push out another id of its
 * set), so a fresh connection knows what others learnt.  Ids longer than
 * KNOWN_ID_MAX bytes are never kept.  The set only ever says "exists"; a
 * miss just asks the database.
 *
 * An id is known to the transaction that ensured it at once, and to all
 * once it commits (a rollback, or a rolled-back savepoint, may undo the
 * creation, and then the pending ids are forgotten).  A DELETE, TRUNCATE or
 * change of user_id on seriesweb.users (sw_users_changed) advances the
 * set's generation right away and again once it commits; entries of an
 * older generation count as absent, so a deleted user is created again by
 * its next event.  A transaction publishes its ids only if the generation
 * has not moved since it first asked: it may have seen a user that a
 * concurrent transaction was deleting.  Transactions that see one snapshot
 * throughout (REPEATABLE READ, SERIALIZABLE) publish nothing, since their
 * snapshot may predate that first question.  Without the preload there is
 * no shared memory, and every statement asks the database.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "settings.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "text_hash.h"
#include "users_cache.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

/* Slots per set: an id may be in any slot of the set its hash picks. */
#define SET_WAYS 8
/* Longer ids are not kept (a slot holds the whole id: no false "exists"). */
#define KNOWN_ID_MAX 54
/* Locks, each guarding every LOCK_COUNT-th set. */
#define LOCK_COUNT 64
#define LOCK_TRANCHE "seriesweb known users"

/* A transaction ensures at most this many ids for publication. */
#define PENDING_MAX 65536

typedef struct KnownSlot
{
	uint64 generation; /* when stored; 0: never used */
	Oid	   database;
	Oid	   users_relid; /* the users table it was seen in */
	uint32 hash;
	uint16 len;
	char   id[KNOWN_ID_MAX];
} KnownSlot;

StaticAssertDecl(sizeof(KnownSlot) <= 80, "seriesweb.known_users documents 80 bytes a slot");

typedef struct KnownSet
{
	pg_atomic_uint64 generation; /* starts at 1 */
	pg_atomic_uint32 off;		 /* set for good after a PREPARE (see below) */
	LWLockPadded	*locks;		 /* LOCK_COUNT; the same address in every process */
	uint32			 nsets;
	KnownSlot		 slots[FLEXIBLE_ARRAY_MEMBER]; /* nsets * SET_WAYS */
} KnownSet;

/* NULL without the preload, or with seriesweb.known_users = 0. */
static KnownSet *known_set = NULL;

/* This backend's view of which table the ids are of. */
static Oid users_relid = InvalidOid;

/* Ids this transaction ensured: known within it, and to all once it commits. */
static MemoryContext pending_cxt = NULL;
static HTAB			*pending = NULL;

/* The generation when this transaction first asked; 0 before. */
static uint64 xact_generation = 0;
/* This transaction changed seriesweb.users: advance the generation at commit. */
static bool users_changed_in_xact = false;

/* ---- the shared set ---- */

static uint32
set_count(void)
{
	return (uint32) ((sw_known_users + SET_WAYS - 1) / SET_WAYS);
}

static Size
known_set_size(void)
{
	return add_size(offsetof(KnownSet, slots),
					mul_size(mul_size(set_count(), SET_WAYS), sizeof(KnownSlot)));
}

void
sw_users_cache_shmem_request(void)
{
	if (sw_known_users == 0)
		return;
	RequestAddinShmemSpace(known_set_size());
	RequestNamedLWLockTranche(LOCK_TRANCHE, LOCK_COUNT);
}

void
sw_users_cache_shmem_init(void)
{
	bool found;

	if (sw_known_users == 0)
		return;
	known_set = ShmemInitStruct("seriesweb known users", known_set_size(), &found);
	if (!found)
	{
		memset(known_set, 0, known_set_size());
		pg_atomic_init_u64(&known_set->generation, 1);
		pg_atomic_init_u32(&known_set->off, 0);
		/* Only the postmaster knows the tranche by name (EXEC_BACKEND). */
		known_set->locks = GetNamedLWLockTranche(LOCK_TRANCHE);
		known_set->nsets = set_count();
	}
}

/* Entries stored before this count as absent. */
static void
advance_generation(void)
{
	if (known_set != NULL)
		pg_atomic_fetch_add_u64(&known_set->generation, 1);
}

/* The set an id belongs to, and its lock. */
static KnownSlot *
set_for_hash(uint32 hash, LWLock **lock)
{
	uint32 set = hash % known_set->nsets;

	*lock = &known_set->locks[set % LOCK_COUNT].lock;
	return &known_set->slots[(Size) set * SET_WAYS];
}

static bool
slot_holds(const KnownSlot *slot, uint64 generation, uint32 hash, const char *id, int len)
{
	return slot->generation == generation && slot->hash == hash && slot->len == len &&
		   slot->database == MyDatabaseId && slot->users_relid == users_relid &&
		   memcmp(slot->id, id, len) == 0;
}

static bool
shared_known(const text *user_id)
{
	const char *id = VARDATA_ANY(user_id);
	int			len = VARSIZE_ANY_EXHDR(user_id);
	uint64		generation = pg_atomic_read_u64(&known_set->generation);
	uint32		hash;
	LWLock	   *lock;
	KnownSlot  *set;
	bool		found = false;

	if (len > KNOWN_ID_MAX || pg_atomic_read_u32(&known_set->off) != 0)
		return false;
	hash = hash_bytes((const unsigned char *) id, len);
	set = set_for_hash(hash, &lock);
	LWLockAcquire(lock, LW_SHARED);
	for (int i = 0; i < SET_WAYS && !found; i++)
		found = slot_holds(&set[i], generation, hash, id, len);
	LWLockRelease(lock);
	return found;
}

/* Store an id as of generation: a free or outdated slot, else any of its set. */
static void
shared_store(const text *user_id, uint64 generation)
{
	static uint32 victim_clock = 0;
	const char	 *id = VARDATA_ANY(user_id);
	int			  len = VARSIZE_ANY_EXHDR(user_id);
	uint32		  hash;
	LWLock		 *lock;
	KnownSlot	 *set;
	KnownSlot	 *slot = NULL;

	if (len > KNOWN_ID_MAX)
		return;
	hash = hash_bytes((const unsigned char *) id, len);
	set = set_for_hash(hash, &lock);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (int i = 0; i < SET_WAYS; i++)
	{
		if (slot_holds(&set[i], generation, hash, id, len))
		{
			LWLockRelease(lock);
			return;
		}
		if (slot == NULL && set[i].generation != generation)
			slot = &set[i];
	}
	if (slot == NULL)
		slot = &set[victim_clock++ % SET_WAYS];
	slot->generation = generation;
	slot->database = MyDatabaseId;
	slot->users_relid = users_relid;
	slot->hash = hash;
	slot->len = (uint16) len;
	memcpy(slot->id, id, len);
	LWLockRelease(lock);
}

/* ---- this transaction ---- */

static void
forget_pending(void)
{
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	pending = NULL;
}

/*
 * At commit: make the ids this transaction ensured known to all, unless
 * the set moved on since the transaction first asked (see the header).
 */
static void
publish_pending(void)
{
	HASH_SEQ_STATUS seq;
	text		  **id;

	if (known_set == NULL || xact_generation == 0 || IsolationUsesXactSnapshot() ||
		pg_atomic_read_u64(&known_set->generation) != xact_generation ||
		pg_atomic_read_u32(&known_set->off) != 0)
		return;
	hash_seq_init(&seq, pending);
	while ((id = hash_seq_search(&seq)) != NULL)
		shared_store(*id, xact_generation);
}

/*
 * The users table changed (or was dropped, or every relcache entry was
 * invalidated): look the table up again, so that a recreated extension is
 * seen (entries name the table they were seen in), and ask again for what
 * this transaction ensured.
 */
static void
forget_users_table(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == users_relid)
	{
		users_relid = InvalidOid;
		forget_pending();
	}
}

/*
 * A prepared transaction that changed users: its COMMIT PREPARED, in any
 * session, runs no callback of ours, so nothing would outdate what others
 * publish meanwhile.  The set is turned off until the server restarts.
 */
static void
turn_off_known_set(void)
{
	if (known_set == NULL || pg_atomic_exchange_u32(&known_set->off, 1) != 0)
		return;
	ereport(LOG, (errmsg("seriesweb: known-users memory turned off until the server restarts"),
				  errdetail("A prepared transaction changed seriesweb.users.")));
}

static void
settle_at_transaction_end(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			/* Once the deletion is visible: a user seen before is outdated. */
			if (users_changed_in_xact)
				advance_generation();
			else if (pending != NULL)
				publish_pending();
			break;
		case XACT_EVENT_PREPARE:
			if (users_changed_in_xact)
				turn_off_known_set();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			break;
		default:
			return;
	}
	forget_pending();
	xact_generation = 0;
	users_changed_in_xact = false;
}

static void
forget_pending_at_savepoint_abort(SubXactEvent event, SubTransactionId mySubid,
								  SubTransactionId parentSubid, void *arg)
{
	/* Which ids the savepoint created is not tracked: forget them all. */
	if (event == SUBXACT_EVENT_ABORT_SUB)
		forget_pending();
}

void
sw_users_cache_register(void)
{
	CacheRegisterRelcacheCallback(forget_users_table, (Datum) 0);
	RegisterXactCallback(settle_at_transaction_end, NULL);
	RegisterSubXactCallback(forget_pending_at_savepoint_abort, NULL);
}

bool
sw_user_known(const text *user_id)
{
	/*
	 * What this transaction ensured, unless users were changed since: a
	 * later statement's snapshot may see the deletion.
	 */
	if (pending != NULL && known_set != NULL && !IsolationUsesXactSnapshot() &&
		pg_atomic_read_u64(&known_set->generation) != xact_generation)
		forget_pending();
	if (pending != NULL && hash_search(pending, &user_id, HASH_FIND, NULL) != NULL)
		return true;
	if (known_set == NULL)
		return false;
	if (!OidIsValid(users_relid))
		users_relid = get_relname_relid("users", get_namespace_oid("seriesweb", false));
	/* Before the statement that checks the others takes its snapshot. */
	if (xact_generation == 0)
		xact_generation = pg_atomic_read_u64(&known_set->generation);
	return shared_known(user_id);
}

void
sw_user_ensured(const text *user_id)
{
	MemoryContext old;
	text		 *copy;

	if (pending == NULL)
	{
		if (pending_cxt == NULL)
			pending_cxt = AllocSetContextCreate(TopMemoryContext, "seriesweb users ensured",
												ALLOCSET_DEFAULT_SIZES);
		pending = sw_text_set_create("seriesweb users ensured", pending_cxt);
	}
	/* A COPY of a million new users: keep the first ones, forget the rest. */
	if (hash_get_num_entries(pending) >= PENDING_MAX)
		return;
	old = MemoryContextSwitchTo(pending_cxt);
	copy = (text *) pg_detoast_datum_copy((struct varlena *) user_id);
	MemoryContextSwitchTo(old);
	hash_search(pending, &copy, HASH_ENTER, NULL);
}

PG_FUNCTION_INFO_V1(sw_users_changed);
Datum
sw_users_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("seriesweb._users_changed() must be called as a trigger")));
	/* Now for this transaction's next statements, and again at commit. */
	CacheInvalidateRelcache(trigdata->tg_relation);
	advance_generation();
	users_changed_in_xact = true;
	return PointerGetDatum(NULL);
}
