/*-------------------------------------------------------------------------
 *
 * watch.c
 *	  The C side of seriesweb.watch(): checking that an application's table
 *	  can feed the matcher, and reading a watched table's trigger back.
 *
 * seriesweb.watch() checks the table and the mapping, then creates a
 * statement trigger on the application's table whose function is the
 * matcher's (sw_match_watched in matcher.c) and whose arguments say which
 * column holds what.  The trigger is the whole state of a watch: dropping
 * the table drops it, renaming the table keeps it, pg_dump saves it with
 * the table and restores it after the table's rows (so a restore matches
 * nothing again), and the view seriesweb.watched reads it back from
 * pg_trigger.  watch() runs with the caller's rights, so PostgreSQL's own
 * checks decide who may put a trigger on the table.  After each ALTER TABLE
 * of a watched table an event trigger checks the mapping again
 * (sw_check_watched), with the code every firing uses (event_source.c), so
 * that a renamed, dropped or retyped column is refused when it is changed.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "event_source.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

/* Tables the application owns, that can have statement triggers with transition tables. */
static void
check_watchable(Relation rel)
{
	Oid ext = get_extension_oid("seriesweb", true);

	if (strcmp(get_namespace_name(RelationGetNamespace(rel)), "seriesweb") == 0 ||
		(OidIsValid(ext) && getExtensionOfObject(RelationRelationId, RelationGetRelid(rel)) == ext))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("table %s belongs to seriesweb", RelationGetRelationName(rel)),
						errhint("Events inserted into seriesweb.events are matched already; "
								"watch the application's own tables.")));
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
						errdetail("Only ordinary and partitioned tables can be watched.")));
}

#define WATCH_TRIGGER "seriesweb_watch"

/* The trigger seriesweb.watch() gave the table, or NULL. */
static Trigger *
watch_trigger(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;

	for (int i = 0; td != NULL && i < td->numtriggers; i++)
	{
		Trigger *t = &td->triggers[i];

		if (strcmp(t->tgname, WATCH_TRIGGER) == 0 &&
			strcmp(get_func_name(t->tgfoid), "_match_watched") == 0 &&
			get_func_namespace(t->tgfoid) == get_namespace_oid("seriesweb", false))
			return t;
	}
	return NULL;
}

/* Argument i of watch() as the trigger stores it: "" for none. */
static char *
watch_arg(FunctionCallInfo fcinfo, int i)
{
	if (PG_ARGISNULL(i))
		return "";
	if (i == 3) /* event_name text; the others are names */
		return TextDatumGetCString(PG_GETARG_DATUM(i));
	return pstrdup(NameStr(*PG_GETARG_NAME(i)));
}

/* clang-format off */
static const char create_trigger_sql[] =
	"CREATE TRIGGER " WATCH_TRIGGER " AFTER INSERT ON %s\n"
	"    REFERENCING NEW TABLE AS seriesweb_new_rows\n"
	"    FOR EACH STATEMENT EXECUTE FUNCTION seriesweb._match_watched(%s, %s, %s, %s, %s)";
/* clang-format on */

static void
create_watch_trigger(Relation rel, char **args)
{
	char *sql = psprintf(create_trigger_sql,
						 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
													RelationGetRelationName(rel)),
						 quote_literal_cstr(args[0]), quote_literal_cstr(args[1]),
						 quote_literal_cstr(args[2]), quote_literal_cstr(args[3]),
						 quote_literal_cstr(args[4]));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "seriesweb: SPI_connect failed");
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "seriesweb: could not create the trigger of table %s",
			 RelationGetRelationName(rel));
	SPI_finish();
}

/*
 * seriesweb.watch(events regclass, user_id_column name, name_column name,
 * event_name text, properties_column name, occurred_at_column name)
 */
PG_FUNCTION_INFO_V1(sw_watch);
Datum
sw_watch(PG_FUNCTION_ARGS)
{
	char		 *args[SW_WATCH_NARGS];
	Relation	  rel;
	SwEventSource src;

	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("watch needs a table")));
	if (PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
						errmsg("watch needs the column that holds the user id")));
	for (int i = 0; i < SW_WATCH_NARGS; i++)
		args[i] = watch_arg(fcinfo, i + 1);

	/* The lock CREATE TRIGGER takes, held from the checks on. */
	rel = table_open(PG_GETARG_OID(0), ShareRowExclusiveLock);
	check_watchable(rel);
	if (watch_trigger(rel) != NULL)
		ereport(ERROR, (errcode(ERRCODE_DUPLICATE_OBJECT),
						errmsg("table %s is watched already", RelationGetRelationName(rel)),
						errhint("Call seriesweb.unwatch() first to watch it another way.")));
	sw_event_source_watched(&src, rel, args, SW_WATCH_NARGS, CurrentMemoryContext);
	create_watch_trigger(rel, args);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * seriesweb._check_watched(events regclass): after an ALTER TABLE, error
 * unless a watched table still has the columns its watch reads.
 */
PG_FUNCTION_INFO_V1(sw_check_watched);
Datum
sw_check_watched(PG_FUNCTION_ARGS)
{
	Relation	  rel = table_open(PG_GETARG_OID(0), AccessShareLock);
	Trigger		 *t = watch_trigger(rel);
	SwEventSource src;

	if (t != NULL)
		sw_event_source_watched(&src, rel, t->tgargs, t->tgnargs, CurrentMemoryContext);
	table_close(rel, AccessShareLock);
	PG_RETURN_VOID();
}
