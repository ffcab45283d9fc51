/*-------------------------------------------------------------------------
 *
 * chunk_context.c
 *	  A memory context that gives every palloc a malloc of its own, so that
 *	  AddressSanitizer sees the exact bounds of each chunk.
 *
 * PostgreSQL's allocator (aset.c) carves chunks out of 8 kB blocks and
 * keeps freed chunks for reuse, so writing a few bytes past a palloc'd
 * buffer, or reading one after pfree, usually lands in memory ASan thinks
 * is fine.  The fuzz driver allocates each input's memory here instead:
 * every chunk is a separate malloc with ASan's redzones around it, pfree
 * really frees (into ASan's quarantine), and a reset frees them all.
 *
 * PostgreSQL 13-15 find a chunk's context in the pointer just before the
 * chunk, so a context type of our own is possible there.  PostgreSQL 16
 * replaced that with a fixed table of context types; there the driver
 * falls back to an ordinary AllocSet context (less precise; README.md).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <stdlib.h>

#include "lib/ilist.h"
#include "utils/memutils.h"

#include "harness.h"

#if PG_VERSION_NUM < 160000

/* Before each chunk; context must be last (GetMemoryChunkContext reads it). */
typedef struct ChunkHeader
{
	dlist_node	  node;
	Size		  size;
	MemoryContext context;
} ChunkHeader;

StaticAssertDecl(sizeof(ChunkHeader) % MAXIMUM_ALIGNOF == 0, "chunks must stay MAXALIGNed");

typedef struct ChunkContext
{
	MemoryContextData header;
	dlist_head		  chunks;
} ChunkContext;

#define CHUNK_HEADER(pointer) (((ChunkHeader *) (pointer)) - 1)

static void *
chunk_alloc(MemoryContext context, Size size)
{
	ChunkHeader *h = malloc(sizeof(ChunkHeader) + size);

	if (h == NULL)
		return NULL; /* palloc reports out of memory */
	h->size = size;
	h->context = context;
	dlist_push_tail(&((ChunkContext *) context)->chunks, &h->node);
	return h + 1;
}

static void
chunk_free(MemoryContext context, void *pointer)
{
	ChunkHeader *h = CHUNK_HEADER(pointer);

	dlist_delete(&h->node);
	free(h);
}

/* Always a new chunk, so that a stale pointer to the old one is caught. */
static void *
chunk_realloc(MemoryContext context, void *pointer, Size size)
{
	ChunkHeader *old = CHUNK_HEADER(pointer);
	void		*moved = chunk_alloc(context, size);

	if (moved == NULL)
		return NULL;
	memcpy(moved, pointer, Min(old->size, size));
	chunk_free(context, pointer);
	return moved;
}

static void
chunk_reset(MemoryContext context)
{
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &((ChunkContext *) context)->chunks)
	{
		dlist_delete(iter.cur);
		free(dlist_container(ChunkHeader, node, iter.cur));
	}
}

static void
chunk_delete(MemoryContext context)
{
	chunk_reset(context);
	free(context);
}

static Size
chunk_space(MemoryContext context, void *pointer)
{
	return CHUNK_HEADER(pointer)->size + sizeof(ChunkHeader);
}

static bool
chunk_is_empty(MemoryContext context)
{
	return dlist_is_empty(&((ChunkContext *) context)->chunks);
}

static void
chunk_stats(MemoryContext context, MemoryStatsPrintFunc printfunc, void *passthru,
			MemoryContextCounters *totals, bool print_to_stderr)
{
	dlist_iter iter;
	Size	   used = 0;
	Size	   nchunks = 0;

	dlist_foreach(iter, &((ChunkContext *) context)->chunks)
	{
		used += dlist_container(ChunkHeader, node, iter.cur)->size;
		nchunks++;
	}
	if (printfunc)
		printfunc(context, passthru, psprintf("%zu bytes in %zu malloc'd chunks", used, nchunks),
				  print_to_stderr);
	if (totals)
	{
		totals->nblocks += nchunks;
		totals->totalspace += used + nchunks * sizeof(ChunkHeader);
	}
}

#ifdef MEMORY_CONTEXT_CHECKING
/* Assert-enabled servers check contexts; ASan checks these chunks instead. */
static void
chunk_check(MemoryContext context)
{
}
#endif

static const MemoryContextMethods chunk_methods = {
	.alloc = chunk_alloc,
	.free_p = chunk_free,
	.realloc = chunk_realloc,
	.reset = chunk_reset,
	.delete_context = chunk_delete,
	.get_chunk_space = chunk_space,
	.is_empty = chunk_is_empty,
	.stats = chunk_stats,
#ifdef MEMORY_CONTEXT_CHECKING
	.check = chunk_check,
#endif
};

MemoryContext
sw_fuzz_chunk_context_create(MemoryContext parent, const char *name)
{
	ChunkContext *c = malloc(sizeof(ChunkContext));

	if (c == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	dlist_init(&c->chunks);
	/* The tag only has to pass MemoryContextIsValid; the methods do the work. */
	MemoryContextCreate((MemoryContext) c, T_AllocSetContext, &chunk_methods, parent, name);
	return (MemoryContext) c;
}

#else /* PG_VERSION_NUM >= 160000 */

MemoryContext
sw_fuzz_chunk_context_create(MemoryContext parent, const char *name)
{
	return AllocSetContextCreate(parent, name, ALLOCSET_DEFAULT_SIZES);
}

#endif
