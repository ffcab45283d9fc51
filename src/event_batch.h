/*-------------------------------------------------------------------------
 *
 * event_batch.h
 *	  Matching many events of one statement at once, for the usual shape
 *	  of a series (see event_batch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_BATCH_H
#define SERIESWEB_BATCH_H

#include "postgres.h"

#include "attrs.h"
#include "series_cache.h"
#include "utils/hsearch.h"

typedef struct SwEventBatch SwEventBatch;

/* Fills the user and company fields of ctx (matcher.c's load_user). */
typedef void (*SwLoadUser)(void *arg, SwContext *ctx);

/* Can an event of this name be matched in an event batch? */
extern bool sw_event_batch_fits(SwCache *cache, const char *name, uint32 name_hash);

extern SwEventBatch *sw_event_batch_create(SwCache *cache, HTAB *counts, MemoryContext parent);

/* Can the batch take an event of this user, or must it be matched first? */
extern bool sw_event_batch_takes(SwEventBatch *batch, const char *user_id);

/* Add an event (its event fields and user id are copied). */
extern void sw_event_batch_add(SwEventBatch *batch, const SwContext *event);

/* The events added since the last sw_event_batch_reset. */
extern SwContext *sw_event_batch_events(SwEventBatch *batch, int *n);

/* Match the events added, as matcher.c would one by one; inside SPI. */
extern void sw_event_batch_match(SwEventBatch *batch, SwLoadUser load, void *arg);

extern void sw_event_batch_reset(SwEventBatch *batch);

#endif /* SERIESWEB_BATCH_H */
