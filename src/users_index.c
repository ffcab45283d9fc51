/*-------------------------------------------------------------------------
 *
 * users_index.c
 *	  Which user ids seriesweb.users holds, asked of its primary key
 *	  directly.
 *
 * The events trigger creates the users of its events that do not exist.
 * Asking the table with a query would leave the answer to a plan made
 * once, while the table may still have been empty: a scan of every user
 * per statement, which made a first large import quadratic.  A probe of
 * the primary key for each id costs the same on an empty table as on a
 * hundred million rows.  Its snapshot is a fresh one, as a query's would
 * be, so a user whose deletion is not committed yet still exists (and the
 * insert that follows never waits for the deleting transaction); a user
 * created meanwhile by another transaction is left to ON CONFLICT.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "users_index.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

/* The primary key of seriesweb.users. */
static Oid
users_primary_key(Relation users)
{
	list_free(RelationGetIndexList(users));
	if (!OidIsValid(users->rd_pkindex))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("seriesweb.users has no primary key"),
				 errhint("Recreate the extension; do not alter seriesweb.users.")));
	return users->rd_pkindex;
}

/* Does the index scan, rescanned for id, find a visible row? */
static bool
user_exists(IndexScanDesc scan, Relation index, Datum id, TupleTableSlot *slot)
{
	ScanKeyData key;

	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_TEXTEQ, id);
	key.sk_collation = index->rd_indcollation[0];
	index_rescan(scan, &key, 1, NULL, 0);
	return index_getnext_slot(scan, ForwardScanDirection, slot);
}

int
sw_users_index_missing(Datum *ids, int n)
{
	Relation users = table_open(get_relname_relid("users", get_namespace_oid("seriesweb", false)),
								AccessShareLock);
	Relation index = index_open(users_primary_key(users), AccessShareLock);
	Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
	TupleTableSlot *slot = table_slot_create(users, NULL);
	IndexScanDesc	scan = index_beginscan(users, index, snapshot, 1, 0);
	int				missing = 0;

	for (int i = 0; i < n; i++)
		if (!user_exists(scan, index, ids[i], slot))
			ids[missing++] = ids[i];

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	UnregisterSnapshot(snapshot);
	index_close(index, AccessShareLock);
	table_close(users, AccessShareLock);
	return missing;
}
