/*-------------------------------------------------------------------------
 *
 * destinations.c
 *	  Fairness between destinations and between the paths of one, for the
 *	  worker (see destinations.h).
 *
 * A destination ("scheme://host:port") may hold 3/4 of the worker's slots,
 * so that a slow one leaves room for the others, and a path (the URL up to
 * any '?') 3/4 of its destination's, so that one hanging path leaves room
 * for the rest of its host, whether or not the host's other paths have
 * been seen yet.  Each of these is a gate, with its requests in flight,
 * its deliveries waiting in the ready list and the average duration of its
 * requests; claims pass over the deliveries of a gate whose slots are busy
 * and that has as many waiting as it may keep.
 *
 * A delivery that cannot start waits for one gate: its path when the path
 * is at its limit, else its destination.  A gate keeps waiting what its
 * slots should start within SW_READY_HORIZON_MS; the rest is handed back to the
 * queue, due when its turn should come at the gate's current pace, and
 * remembered: as soon as the gate has free slots and nothing waits for
 * them, the worker makes those deliveries due at once (sw_dest_pull)
 * instead of idling until the predicted time.  So a prediction that is too
 * late costs nothing while the worker runs, and one too early costs a
 * claim; the predictions only matter for what the worker forgot (more than
 * HANDED_BACK_MAX per gate, or a restart).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "common/hashfn.h"
#include "destinations.h"
#include "lib/ilist.h"
#include "settings.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* Turns are predicted as if a request took at least this long. */
#define MIN_REQUEST_MS 200.0
/* A delivery handed back is due again within this long. */
#define HAND_BACK_MAX_MS (10 * 60 * 1000)
/* Handed-back deliveries remembered per gate, at most. */
#define HANDED_BACK_MAX 4096

typedef struct HandedBack
{
	int64		delivery_id;
	int			attempts;
	TimestampTz due;
} HandedBack;

struct SwGate
{
	uint32		key;  /* hash of the destination or path: the hash key */
	SwGate	   *dest; /* a path's destination; NULL for a destination */
	int			in_flight;
	int			waiting; /* in the ready list */
	double		avg_ms;	 /* moving average duration; -1 before one ends */
	TimestampTz since;	 /* a request last ended, or the first one started */
	uint32		pass;	 /* the hand-back pass that kept counts */
	int			kept;	 /* waiting for this gate, kept in that pass */
	HandedBack *handed;	 /* handed back and not yet due: a ring, oldest first */
	int			handed_head;
	int			nhanded;
	int			handed_cap;
	bool		pulled;		/* some were made due and are not claimed yet */
	dlist_node	owing_node; /* in owing while nhanded > 0 */
	char	   *key_text;	/* as the claim computes it, or NULL (see dest_key_text) */
};

struct SwDestinations
{
	MemoryContext cxt;
	HTAB		 *dests;
	HTAB		 *paths;
	dlist_head	  owing; /* gates with deliveries handed back */
	uint32		  pass;
};

static HTAB *
gate_table(const char *name, MemoryContext cxt)
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(uint32);
	ctl.entrysize = sizeof(SwGate);
	ctl.hcxt = cxt;
	return hash_create(name, 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

SwDestinations *
sw_dest_create(MemoryContext cxt)
{
	SwDestinations *d = MemoryContextAllocZero(cxt, sizeof(SwDestinations));

	d->cxt = cxt;
	d->dests = gate_table("seriesweb destinations", cxt);
	d->paths = gate_table("seriesweb destination paths", cxt);
	dlist_init(&d->owing);
	return d;
}

/* ---- gates ---- */

/* The destination part of a URL: scheme://host:port. */
static size_t
dest_len(const char *url)
{
	const char *start = strstr(url, "://");

	start = start ? start + 3 : url;
	return (start - url) + strcspn(start, "/?#");
}

static char *
pnstrdup_in(MemoryContext cxt, const char *s, size_t len)
{
	char *copy = MemoryContextAlloc(cxt, len + 1);

	memcpy(copy, s, len);
	copy[len] = '\0';
	return copy;
}

/*
 * The destination as the claim statement computes it from the URL (up to
 * the third '/'), for claims to pass over; NULL when the two would differ
 * (a query or fragment right after the host), and then it is not passed
 * over.
 */
static char *
dest_key_text(const char *url, MemoryContext cxt)
{
	size_t len = dest_len(url);

	if (strstr(url, "://") == NULL || (url[len] != '/' && url[len] != '\0'))
		return NULL;
	return pnstrdup_in(cxt, url, len);
}

static SwGate *
gate_enter(HTAB *table, uint32 key, SwGate *dest)
{
	bool	found;
	SwGate *g = hash_search(table, &key, HASH_ENTER, &found);

	if (!found)
	{
		memset(g, 0, sizeof(SwGate));
		g->key = key;
		g->dest = dest;
		g->avg_ms = -1; /* no request ended yet */
	}
	return g;
}

SwRoute
sw_dest_claimed(SwDestinations *d, const char *url)
{
	size_t	path_len = strcspn(url, "?"); /* as split_part(url, '?', 1) */
	uint32	dest_key = hash_bytes((const unsigned char *) url, dest_len(url));
	uint32	path_key = hash_bytes((const unsigned char *) url, path_len);
	SwRoute r;

	r.dest = gate_enter(d->dests, dest_key, NULL);
	if (r.dest->key_text == NULL)
		r.dest->key_text = dest_key_text(url, d->cxt);
	r.path = gate_enter(d->paths, path_key, r.dest);
	if (r.path->key_text == NULL)
		r.path->key_text = pnstrdup_in(d->cxt, url, path_len);
	r.dest->waiting++;
	r.path->waiting++;
	return r;
}

/* Slots a gate may hold: most of all, or of its destination's; never all. */
static int
gate_slots(const SwGate *g)
{
	int slots = Max(1, sw_max_concurrency * 3 / 4);

	return g->dest == NULL ? slots : Max(1, slots * 3 / 4);
}

/* Slots free for a delivery waiting for g, its destination's too. */
static int
gate_room(const SwGate *g)
{
	int room = gate_slots(g) - g->in_flight;

	if (g->dest != NULL)
		room = Min(room, gate_slots(g->dest) - g->dest->in_flight);
	return Max(room, 0);
}

/*
 * How many deliveries may wait for a gate: what its slots will start within
 * SW_READY_HORIZON_MS at its usual pace, and at least one full set of slots.
 * A gate none of whose requests has ended yet counts as slow until one
 * does.
 */
static int
gate_keep(const SwGate *g)
{
	int	   slots = gate_slots(g);
	double rounds;

	if (g->avg_ms < 0)
		return slots;
	rounds = SW_READY_HORIZON_MS / Max(g->avg_ms, 1.0);
	return rounds >= INT_MAX / slots ? INT_MAX : Max(1, (int) rounds) * slots;
}

bool
sw_dest_may_start(SwRoute r)
{
	return r.dest->in_flight < gate_slots(r.dest) && r.path->in_flight < gate_slots(r.path);
}

static void
gate_started(SwGate *g, TimestampTz now)
{
	if (g->in_flight++ == 0)
		g->since = now;
	g->waiting--;
}

void
sw_dest_started(SwRoute r, TimestampTz now)
{
	gate_started(r.dest, now);
	gate_started(r.path, now);
}

/*
 * A path that nothing waits for, flies to or is remembered for is dropped:
 * URLs with a path per user would fill the table otherwise.  Destinations
 * are few, and stay.
 */
static void
forget_if_idle(SwDestinations *d, SwGate *path)
{
	if (path->in_flight == 0 && path->waiting == 0 && path->nhanded == 0)
	{
		pfree(path->key_text);
		hash_search(d->paths, &path->key, HASH_REMOVE, NULL);
	}
}

static void
gate_finished(SwGate *g, double duration_ms, TimestampTz now)
{
	g->in_flight--;
	g->avg_ms = g->avg_ms < 0 ? duration_ms : g->avg_ms * 0.8 + duration_ms * 0.2;
	g->since = now;
}

void
sw_dest_finished(SwDestinations *d, SwRoute r, double duration_ms, TimestampTz now)
{
	gate_finished(r.dest, duration_ms, now);
	gate_finished(r.path, duration_ms, now);
	forget_if_idle(d, r.path);
}

int
sw_dest_count(SwDestinations *d)
{
	return (int) (hash_get_num_entries(d->dests) + hash_get_num_entries(d->paths));
}

static int
add_full_gates(HTAB *gates, const char **keys, int n)
{
	HASH_SEQ_STATUS seq;
	SwGate		   *g;

	hash_seq_init(&seq, gates);
	while ((g = hash_seq_search(&seq)) != NULL)
		if (g->key_text != NULL && g->in_flight >= gate_slots(g) && g->waiting >= gate_keep(g))
			keys[n++] = g->key_text;
	return n;
}

int
sw_dest_full(SwDestinations *d, const char **keys)
{
	return add_full_gates(d->paths, keys, add_full_gates(d->dests, keys, 0));
}

/* ---- deliveries handed back ---- */

static HandedBack *
handed_at(SwGate *g, int i)
{
	return &g->handed[(g->handed_head + i) % g->handed_cap];
}

/* Remember one more, if there is room; the ring grows as needed. */
static void
remember_handed_back(SwDestinations *d, SwGate *g, int64 delivery_id, int attempts, TimestampTz due)
{
	HandedBack *e;

	if (g->nhanded == g->handed_cap)
	{
		int			cap = g->handed_cap == 0 ? 64 : g->handed_cap * 2;
		HandedBack *ring;

		if (cap > HANDED_BACK_MAX)
			return; /* it comes back when due */
		ring = MemoryContextAlloc(d->cxt, sizeof(HandedBack) * cap);
		for (int i = 0; i < g->nhanded; i++)
			ring[i] = *handed_at(g, i);
		if (g->handed)
			pfree(g->handed);
		g->handed = ring;
		g->handed_head = 0;
		g->handed_cap = cap;
	}
	if (g->nhanded == 0)
	{
		dlist_push_tail(&d->owing, &g->owing_node);
		g->pulled = false;
	}
	e = handed_at(g, g->nhanded++);
	e->delivery_id = delivery_id;
	e->attempts = attempts;
	e->due = due;
}

/* The oldest remembered one goes; with the last, the ring. */
static HandedBack
forget_oldest(SwGate *g)
{
	HandedBack e = *handed_at(g, 0);

	g->handed_head = (g->handed_head + 1) % g->handed_cap;
	if (--g->nhanded == 0)
	{
		dlist_delete(&g->owing_node);
		pfree(g->handed);
		g->handed = NULL;
		g->handed_cap = g->handed_head = 0;
	}
	return e;
}

/* Those due by now are the queue's again (claimed, or about to be). */
static void
forget_due(SwGate *g, TimestampTz now)
{
	while (g->nhanded > 0 && handed_at(g, 0)->due <= now)
		forget_oldest(g);
}

void
sw_dest_begin_pass(SwDestinations *d)
{
	d->pass++;
}

/* Kept so far in this pass for g. */
static int *
kept_in_pass(SwDestinations *d, SwGate *g)
{
	if (g->pass != d->pass)
	{
		g->pass = d->pass;
		g->kept = 0;
	}
	return &g->kept;
}

/*
 * When a delivery handed back for g should find a free slot: after those
 * kept waiting and those handed back before it, at the pace at which g's
 * slots free up.  That is its usual request, and no less than the time it
 * has gone without one ending (a path that hangs has no usual request yet).
 */
static TimestampTz
turn_of(SwGate *g, TimestampTz now)
{
	double request_ms = Max(MIN_REQUEST_MS, g->avg_ms);
	double ahead = g->kept + g->nhanded + 1;

	if (g->in_flight > 0)
		request_ms = Max(request_ms, (now - g->since) / 1000.0);
	return TimestampTzPlusMilliseconds(
		now, (int64) Min(request_ms * ahead / gate_slots(g), HAND_BACK_MAX_MS));
}

bool
sw_dest_hand_back(SwDestinations *d, SwRoute r, int64 delivery_id, int attempts, TimestampTz now,
				  int *delay_ms)
{
	/* What it waits for: its path when that is at its limit, else its destination. */
	SwGate	   *line = r.path->in_flight >= gate_slots(r.path) ? r.path : r.dest;
	int		   *kept = kept_in_pass(d, line);
	TimestampTz due;

	if (*kept < gate_keep(line))
	{
		(*kept)++;
		return false;
	}
	forget_due(line, now);
	due = turn_of(line, now);
	remember_handed_back(d, line, delivery_id, attempts, due);
	*delay_ms = (int) ((due - now + 999) / 1000);
	r.dest->waiting--;
	r.path->waiting--;
	forget_if_idle(d, r.path);
	return true;
}

int
sw_dest_pull(SwDestinations *d, int64 *delivery_ids, int *attempts, int max, TimestampTz now)
{
	dlist_mutable_iter it;
	int				   n = 0;

	dlist_foreach_modify(it, &d->owing)
	{
		SwGate *g = dlist_container(SwGate, owing_node, it.cur);
		int		want;

		forget_due(g, now);
		if (g->nhanded > 0 && !g->pulled && gate_room(g) > 0)
		{
			/* Enough for its free slots, and for as many to wait. */
			want = Min(gate_room(g) + (int64) gate_keep(g), INT_MAX);
			for (; want > 0 && g->nhanded > 0 && n < max; want--, n++)
			{
				HandedBack e = forget_oldest(g);

				delivery_ids[n] = e.delivery_id;
				attempts[n] = e.attempts;
			}
			g->pulled = true;
		}
		if (g->dest != NULL)
			forget_if_idle(d, g);
		if (n == max)
			break;
	}
	return n;
}

void
sw_dest_claimed_all(SwDestinations *d)
{
	dlist_iter it;

	dlist_foreach(it, &d->owing) dlist_container(SwGate, owing_node, it.cur)->pulled = false;
}
