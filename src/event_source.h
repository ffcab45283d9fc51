/*-------------------------------------------------------------------------
 *
 * event_source.h
 *	  Where the matcher finds an event's fields in the rows of the
 *	  inserting statement: seriesweb.events, or an application's table
 *	  watched with seriesweb.watch().
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_EVENT_SOURCE_H
#define SERIESWEB_EVENT_SOURCE_H

#include "postgres.h"

#include "attrs.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/rel.h"

/* The arguments of a watched table's trigger, in this order. */
#define SW_WATCH_NARGS 5

/*
 * Attribute numbers of the fields in the statement's rows; 0 where the
 * source has no such column.
 */
typedef struct SwEventSource
{
	int			user_id;
	bool		user_id_is_text; /* else converted by its output function */
	FmgrInfo	user_id_out;
	int			name; /* 0: every row is event_name */
	const char *event_name;
	int			properties;		 /* 0: the whole row as a JSON object */
	FmgrInfo	row_to_jsonb;	 /* to_jsonb() of the row type, when so */
	int			occurred_at;	 /* 0: the transaction's start, as now() */
	int			event_id;		 /* 0: none (a watched table) */
	int			installation_id; /* 0: none (a watched table, or 0.1) */
} SwEventSource;

/* seriesweb.events, whose description is desc. */
extern void sw_event_source_events(SwEventSource *src, TupleDesc desc);

/*
 * A watched table, described by the arguments of its trigger (user id
 * column, name column, event name, properties column, occurred_at column;
 * "" for none).  Errors name what is wrong; seriesweb.watch() calls this
 * before creating the trigger, and a firing checks the same way
 * (sw_event_source_of).
 */
extern void sw_event_source_watched(SwEventSource *src, Relation rel, char **args, int nargs,
									MemoryContext cxt);

/*
 * The source of the rows of a firing of the trigger: seriesweb.events, or
 * a watched table (watched) described by the trigger's arguments.  Checked
 * as sw_event_source_watched checks it, once until the table changes; what
 * the reads need beyond attribute numbers is allocated in cxt.
 */
extern void sw_event_source_of(SwEventSource *src, TriggerData *trigdata, bool watched,
							   MemoryContext cxt);

/*
 * The event's user id, or NULL when the row is no event (a watched
 * table's row with a null user id or name).  Allocated in the current
 * memory context.
 */
extern text *sw_event_user_id(SwEventSource *src, TupleTableSlot *slot);

/* The event's name (NULL: no event), for the cheap test of relevance. */
extern char *sw_event_name(const SwEventSource *src, TupleTableSlot *slot);

/* The event's id, time and properties into ctx (user id and name are set). */
extern void sw_event_read(SwEventSource *src, TupleTableSlot *slot, SwContext *ctx);

#endif /* SERIESWEB_EVENT_SOURCE_H */
