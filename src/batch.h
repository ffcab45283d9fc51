/*-------------------------------------------------------------------------
 *
 * batch.h
 *	  Matching many events of one statement at once, for the usual shape
 *	  of a series (see batch.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_BATCH_H
#define SERIESWEB_BATCH_H

#include "postgres.h"

#include "attrs.h"
#include "series_cache.h"
#include "utils/hsearch.h"

typedef struct SwBatch SwBatch;

/* Fills the user and company fields of ctx (matcher.c's load_user). */
typedef void (*SwLoadUser)(void *arg, SwContext *ctx);

/* Can an event of this name be matched in a batch? */
extern bool sw_batch_fits(SwCache *cache, const char *name, uint32 name_hash);

extern SwBatch *sw_batch_create(SwCache *cache, HTAB *counts, MemoryContext parent);

/* Can the batch take an event of this user, or must it be matched first? */
extern bool sw_batch_takes(SwBatch *batch, const char *user_id);

/* Add an event (its event fields and user id are copied). */
extern void sw_batch_add(SwBatch *batch, const SwContext *event);

/* The events added since the last sw_batch_reset. */
extern SwContext *sw_batch_events(SwBatch *batch, int *n);

/* Match the events added, as matcher.c would one by one; inside SPI. */
extern void sw_batch_match(SwBatch *batch, SwLoadUser load, void *arg);

extern void sw_batch_reset(SwBatch *batch);

#endif /* SERIESWEB_BATCH_H */
