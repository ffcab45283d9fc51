/*-------------------------------------------------------------------------
 *
 * text_hash.c
 *	  dynahash tables keyed by text values.
 *
 * The matcher, its batches and the queue collect users by id (the users
 * of a statement, those it created, those a series reached), and the users
 * cache keeps the ids a transaction ensured.  Their keys are pointers to
 * text values that live as long as the table; hashing and comparing look
 * at the bytes, so two copies of one id are one key.  See text_hash.h.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "common/hashfn.h"
#include "text_hash.h"

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
