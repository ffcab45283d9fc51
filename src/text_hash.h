/*-------------------------------------------------------------------------
 *
 * text_hash.h
 *	  Backend-local hash tables keyed by text values (compared by content),
 *	  for the matcher's per-statement sets of users.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_TEXT_HASH_H
#define SERIESWEB_TEXT_HASH_H

#include "postgres.h"

#include "utils/hsearch.h"

/* A set of text values (keys are text pointers, compared by content). */
extern HTAB *sw_text_set_create(const char *name, MemoryContext cxt);

/* The same keyed map: entries of entrysize bytes that start with the key. */
extern HTAB *sw_text_map_create(const char *name, Size entrysize, MemoryContext cxt);

#endif /* SERIESWEB_TEXT_HASH_H */
