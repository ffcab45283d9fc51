/*-------------------------------------------------------------------------
 *
 * event_source.c
 *	  Where the matcher finds an event's fields in the rows of the
 *	  inserting statement.  See event_source.h.
 *
 * The matcher (matcher.c) is one implementation of rules, whatever table
 * the events arrive in: seriesweb.events, whose columns are the event's
 * fields, or an application's own table watched with seriesweb.watch(),
 * whose trigger arguments say which column holds what.  A watched table's
 * user id may be text or a number or uuid (its text form is the user id);
 * its event name is a text column or one name for every row; its
 * properties a jsonb column or, without one, the whole row as a JSON
 * object; its time a timestamptz column or the transaction's start.  A row
 * with a null user id or name is no event: the application's insert goes
 * on, and nothing is matched for that row.
 *
 * The mapping is checked with the same code when the table is watched and
 * when a statement fires the trigger, so a column dropped or changed
 * behind the watch's back (seriesweb's event trigger refuses that) is an
 * error naming it, never a wrong read.  A trigger's mapping, once checked,
 * is kept by this backend until the table's relcache entry is invalidated,
 * as any change to its columns or triggers does; then the next statement
 * checks it again.  Only attribute numbers and types are kept: what a
 * statement's reads need beyond them lives in its own memory context.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "event_source.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* What a watched column may be, by its role. */
static const Oid user_id_types[] = {TEXTOID, VARCHAROID, INT2OID, INT4OID, INT8OID, UUIDOID};
static const Oid name_types[] = {TEXTOID, VARCHAROID};
static const Oid properties_types[] = {JSONBOID};
static const Oid occurred_at_types[] = {TIMESTAMPTZOID};

void
sw_event_source_events(SwEventSource *src, TupleDesc desc)
{
	memset(src, 0, sizeof(*src));
	src->event_id = SPI_fnumber(desc, "event_id");
	src->user_id = SPI_fnumber(desc, "user_id");
	src->user_id_is_text = true;
	src->name = SPI_fnumber(desc, "name");
	src->properties = SPI_fnumber(desc, "properties");
	src->occurred_at = SPI_fnumber(desc, "occurred_at");
	src->installation_id = Max(SPI_fnumber(desc, "installation_id"), 0);
	if (src->event_id <= 0 || src->user_id <= 0 || src->name <= 0 || src->properties <= 0 ||
		src->occurred_at <= 0)
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_COLUMN),
						errmsg("seriesweb.events lacks a column the matcher needs"),
						errhint("Recreate the extension; do not alter seriesweb.events.")));
}

static char *
relation_name(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

static char *
type_names(const Oid *types, int ntypes)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < ntypes; i++)
		appendStringInfo(&buf, "%s%s",
						 i == 0			   ? ""
						 : i == ntypes - 1 ? " or "
										   : ", ",
						 format_type_be(types[i]));
	return buf.data;
}

/*
 * The attribute number of the column that holds the event's "what" (user
 * id, name ...), checked to exist and to be of one of the types (a domain
 * over one of them is one of them).
 */
static int
watched_column(Relation rel, const char *column, const char *what, const Oid *types, int ntypes)
{
	TupleDesc desc = RelationGetDescr(rel);
	int		  attnum = SPI_fnumber(desc, column);
	Oid		  type;

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of table %s does not exist", column, relation_name(rel)),
				 errdetail("seriesweb reads the event's %s from it.", what)));
	type = getBaseType(TupleDescAttr(desc, attnum - 1)->atttypid);
	for (int i = 0; i < ntypes; i++)
		if (type == types[i])
			return attnum;
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("column \"%s\" of table %s is of type %s", column, relation_name(rel),
					format_type_be(TupleDescAttr(desc, attnum - 1)->atttypid)),
			 errdetail("The event's %s must be of type %s.", what, type_names(types, ntypes))));
	return 0; /* keep the compiler quiet */
}

/* The event's name: a column, or one name for every row; exactly one. */
static void
watched_name(SwEventSource *src, Relation rel, const char *column, const char *event_name)
{
	if (*column != '\0' && *event_name != '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("table %s is given both a name column and an event name",
							   relation_name(rel)),
						errhint("Give name_column to read each event's name from the row, or "
								"event_name to name every row's event alike; not both.")));
	if (*column == '\0' && *event_name == '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("table %s is given no event name", relation_name(rel)),
						errhint("Give name_column to read each event's name from the row, or "
								"event_name to name every row's event alike.")));
	if (*column != '\0')
		src->name = watched_column(rel, column, "name", name_types, lengthof(name_types));
	else
		src->event_name = event_name;
}

/* to_jsonb() of the table's row type, for properties taken from the row. */
static void
prepare_row_to_jsonb(SwEventSource *src, Relation rel, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	Const		 *row = makeNullConst(RelationGetDescr(rel)->tdtypeid, -1, InvalidOid);

	fmgr_info_cxt(F_TO_JSONB, &src->row_to_jsonb, cxt);
	/* to_jsonb() reads its argument's type from the call expression. */
	src->row_to_jsonb.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(row),
													  InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
	MemoryContextSwitchTo(old);
}

/*
 * Check a watched table's mapping and set the attribute numbers of src;
 * returns the base type of the user id column.
 */
static Oid
check_watched(SwEventSource *src, Relation rel, char **args, int nargs)
{
	Oid user_id_type;

	if (nargs != SW_WATCH_NARGS)
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("the seriesweb trigger of table %s has %d arguments, not %d",
							   relation_name(rel), nargs, SW_WATCH_NARGS),
						errhint("Watch the table again with seriesweb.unwatch() and "
								"seriesweb.watch().")));
	memset(src, 0, sizeof(*src));
	src->user_id = watched_column(rel, args[0], "user id", user_id_types, lengthof(user_id_types));
	user_id_type = getBaseType(TupleDescAttr(RelationGetDescr(rel), src->user_id - 1)->atttypid);
	src->user_id_is_text = user_id_type == TEXTOID || user_id_type == VARCHAROID;
	watched_name(src, rel, args[1], args[2]);
	if (*args[3] != '\0')
		src->properties = watched_column(rel, args[3], "properties", properties_types,
										 lengthof(properties_types));
	if (*args[4] != '\0')
		src->occurred_at =
			watched_column(rel, args[4], "time", occurred_at_types, lengthof(occurred_at_types));
	return user_id_type;
}

/* The functions a watched table's reads call, in cxt. */
static void
prepare_watched(SwEventSource *src, Relation rel, Oid user_id_type, MemoryContext cxt)
{
	if (!src->user_id_is_text)
	{
		Oid	 out;
		bool varlena;

		getTypeOutputInfo(user_id_type, &out, &varlena);
		fmgr_info_cxt(out, &src->user_id_out, cxt);
	}
	if (src->properties == 0)
		prepare_row_to_jsonb(src, rel, cxt);
}

void
sw_event_source_watched(SwEventSource *src, Relation rel, char **args, int nargs, MemoryContext cxt)
{
	Oid user_id_type = check_watched(src, rel, args, nargs);

	prepare_watched(src, rel, user_id_type, cxt);
}

/* A trigger's checked mapping, kept by this backend. */
typedef struct CheckedSource
{
	Oid			  trigger; /* hash key: the trigger's oid */
	Oid			  relid;
	bool		  valid; /* false once the table's relcache entry is invalidated */
	SwEventSource src;	 /* attribute numbers only: no functions, no event name */
	Oid			  user_id_type;
} CheckedSource;

static HTAB *checked_sources = NULL;

static void
forget_checked_sources(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	CheckedSource  *c;

	hash_seq_init(&seq, checked_sources);
	while ((c = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || c->relid == relid)
			c->valid = false;
}

static void
create_checked_sources(void)
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CheckedSource);
	ctl.hcxt = CacheMemoryContext;
	checked_sources =
		hash_create("seriesweb event sources", 8, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	/* Once per backend, as the table lives. */
	CacheRegisterRelcacheCallback(forget_checked_sources, (Datum) 0);
}

/* Check the trigger's mapping into c. */
static void
check_source(CheckedSource *c, TriggerData *trigdata, bool watched)
{
	Relation rel = trigdata->tg_relation;

	c->relid = RelationGetRelid(rel);
	c->user_id_type = TEXTOID;
	if (watched)
		c->user_id_type = check_watched(&c->src, rel, trigdata->tg_trigger->tgargs,
										trigdata->tg_trigger->tgnargs);
	else
		sw_event_source_events(&c->src, RelationGetDescr(rel));
	/* It points into the trigger's arguments, which the relcache may free. */
	c->src.event_name = NULL;
}

/* The trigger's mapping as last checked, or checked now. */
static const CheckedSource *
checked_source(TriggerData *trigdata, bool watched)
{
	CheckedSource *c;
	bool		   found;

	if (checked_sources == NULL)
		create_checked_sources();
	c = hash_search(checked_sources, &trigdata->tg_trigger->tgoid, HASH_ENTER, &found);
	if (found && c->valid)
		return c;
	/* Set first: an invalidation that arrives during the check wins. */
	c->valid = true;
	PG_TRY();
	{
		check_source(c, trigdata, watched);
	}
	PG_CATCH();
	{
		c->valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return c;
}

void
sw_event_source_of(SwEventSource *src, TriggerData *trigdata, bool watched, MemoryContext cxt)
{
	const CheckedSource *c = checked_source(trigdata, watched);

	*src = c->src;
	if (!watched)
		return;
	if (src->name == 0)
		src->event_name = trigdata->tg_trigger->tgargs[2];
	prepare_watched(src, trigdata->tg_relation, c->user_id_type, cxt);
}

text *
sw_event_user_id(SwEventSource *src, TupleTableSlot *slot)
{
	bool  isnull;
	Datum id = slot_getattr(slot, src->user_id, &isnull);

	if (isnull)
		return NULL;
	if (src->name != 0)
	{
		(void) slot_getattr(slot, src->name, &isnull);
		if (isnull)
			return NULL;
	}
	/* Copied: a spilled tuplestore reuses the slot's tuple memory. */
	if (src->user_id_is_text)
		return DatumGetTextPCopy(id);
	return cstring_to_text(OutputFunctionCall(&src->user_id_out, id));
}

char *
sw_event_name(const SwEventSource *src, TupleTableSlot *slot)
{
	bool  isnull;
	Datum name;

	if (src->name == 0)
		return pstrdup(src->event_name);
	name = slot_getattr(slot, src->name, &isnull);
	return isnull ? NULL : TextDatumGetCString(name);
}

static Jsonb *
event_properties(SwEventSource *src, TupleTableSlot *slot)
{
	bool  isnull;
	Datum props;

	if (src->properties == 0)
		return DatumGetJsonbP(FunctionCall1(&src->row_to_jsonb, ExecFetchSlotHeapTupleDatum(slot)));
	props = slot_getattr(slot, src->properties, &isnull);
	return isnull ? NULL : DatumGetJsonbPCopy(props);
}

void
sw_event_read(SwEventSource *src, TupleTableSlot *slot, SwContext *ctx)
{
	bool isnull;

	ctx->event_id = 0;
	if (src->event_id != 0)
		ctx->event_id = DatumGetInt64(slot_getattr(slot, src->event_id, &isnull));
	ctx->event_occurred_at = GetCurrentTransactionStartTimestamp();
	if (src->occurred_at != 0)
	{
		Datum at = slot_getattr(slot, src->occurred_at, &isnull);

		if (!isnull)
			ctx->event_occurred_at = DatumGetTimestampTz(at);
	}
	ctx->event_props = event_properties(src, slot);
}
