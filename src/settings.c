/*-------------------------------------------------------------------------
 *
 * settings.c
 *	  Every seriesweb.* setting, with bounds, units and reload behaviour.
 *
 * seriesweb.database is fixed at server start (the launcher reads it once);
 * everything else is reloadable (SIGHUP) and read by the worker at the top
 * of its loop and by test_webhook in the calling backend.  Settings that
 * widen where requests may go are PGC_SIGHUP, so only the server's
 * configuration (superuser, ALTER SYSTEM) can change them.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "guard.h"
#include "miscadmin.h"
#include "settings.h"
#include "utils/guc.h"
#include "utils/varlena.h"

char *sw_database = NULL;
int	  sw_max_concurrency = 64;
int	  sw_timeout_ms = 10000;
char *sw_allowed_networks = NULL;
int	  sw_response_body_limit = 8192;
int	  sw_max_body_size = 256 * 1024;
int	  sw_retention_s = 30 * 24 * 3600;
int	  sw_known_users = 65536;

static char *retry_delays_text = NULL;
int			 sw_retry_delay_count = 2;
int			 sw_retry_delays_ms[SW_MAX_RETRY_DELAYS] = {5000, 300000};

/* What the check hook parsed, handed to the assign hook. */
typedef struct RetryDelays
{
	int count;
	int ms[SW_MAX_RETRY_DELAYS];
} RetryDelays;

/* Empty (every database) or a list of names, each of which could be one. */
static bool
check_database(char **newval, void **extra, GucSource source)
{
	char	 *copy = pstrdup(*newval ? *newval : "");
	List	 *names;
	ListCell *lc;
	bool	  ok = SplitGUCList(copy, ',', &names);

	if (!ok)
		GUC_check_errdetail("seriesweb.database must be a comma-separated list of databases.");
	foreach (lc, ok ? names : NIL)
		if (strlen(lfirst(lc)) == 0 || strlen(lfirst(lc)) >= NAMEDATALEN)
		{
			GUC_check_errdetail("\"%s\" cannot name a database (1 to %d bytes).",
								(char *) lfirst(lc), NAMEDATALEN - 1);
			ok = false;
			break;
		}
	list_free(names);
	pfree(copy);
	return ok;
}

bool
sw_database_served(const char *name)
{
	char	 *copy;
	List	 *names;
	ListCell *lc;
	bool	  served = false;

	if (sw_database == NULL || sw_database[0] == '\0')
		return true;
	copy = pstrdup(sw_database);
	if (SplitGUCList(copy, ',', &names))
		foreach (lc, names)
			served |= strcmp(lfirst(lc), name) == 0;
	list_free(names);
	pfree(copy);
	return served;
}

/* One entry of seriesweb.retry_delays, in ms; false with the GUC detail if bad. */
static bool
parse_retry_delay(const char *item, int *ms)
{
	const char *hint = NULL;

	if (!parse_int(item, ms, GUC_UNIT_MS, &hint) || *ms < 0 || *ms > 24 * 3600 * 1000)
	{
		GUC_check_errdetail("\"%s\" is not a duration between 0 and 1 day.", item);
		if (hint)
			GUC_check_errhint("%s", hint);
		return false;
	}
	return true;
}

/* GUC extras are freed by guc.c: PG 16 moved them to its own allocator. */
static void *
guc_extra_copy(const void *value, size_t size)
{
#if PG_VERSION_NUM >= 160000
	void *extra = guc_malloc(LOG, size);
#else
	void *extra = malloc(size);
#endif

	if (extra != NULL)
		memcpy(extra, value, size);
	return extra;
}

static bool
check_retry_delays(char **newval, void **extra, GucSource source)
{
	char	   *copy = pstrdup(*newval);
	List	   *items;
	ListCell   *lc;
	RetryDelays parsed = {0};

	if (!SplitIdentifierString(copy, ',', &items) || list_length(items) == 0)
	{
		GUC_check_errdetail("seriesweb.retry_delays must be a comma-separated list of durations, "
							"such as \"5s, 5min\".");
		return false;
	}
	if (list_length(items) > SW_MAX_RETRY_DELAYS)
	{
		GUC_check_errdetail("seriesweb.retry_delays has %d entries; at most %d are allowed.",
							list_length(items), SW_MAX_RETRY_DELAYS);
		return false;
	}
	foreach (lc, items)
	{
		if (!parse_retry_delay((const char *) lfirst(lc), &parsed.ms[parsed.count]))
			return false;
		parsed.count++;
	}
	*extra = guc_extra_copy(&parsed, sizeof(RetryDelays));
	return *extra != NULL;
}

static void
assign_retry_delays(const char *newval, void *extra)
{
	const RetryDelays *parsed = (const RetryDelays *) extra;

	sw_retry_delay_count = parsed->count;
	memcpy(sw_retry_delays_ms, parsed->ms, sizeof(parsed->ms));
}

int
sw_retry_delay_ms(int failed_attempts)
{
	int i = Max(failed_attempts, 1) - 1;

	return sw_retry_delays_ms[Min(i, sw_retry_delay_count - 1)];
}

int
sw_longest_retry_delay_ms(void)
{
	int longest = 0;

	for (int i = 0; i < sw_retry_delay_count; i++)
		longest = Max(longest, sw_retry_delays_ms[i]);
	return longest;
}

void
sw_define_settings(void)
{
	/* A server-start setting can only be defined while preloading. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable(
			"seriesweb.database", "Databases whose deliveries seriesweb sends.",
			"Empty: every database that has the extension; else a comma-separated list.",
			&sw_database, "", PGC_POSTMASTER, GUC_LIST_INPUT, check_database, NULL, NULL);
	DefineCustomIntVariable("seriesweb.max_concurrency", "Webhook requests in flight at once.",
							"Each one may hold a connection (file descriptor) open.",
							&sw_max_concurrency, 64, 1, 4096, PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("seriesweb.timeout", "Time limit of one webhook attempt.", NULL,
							&sw_timeout_ms, 10000, 100, 10 * 60 * 1000, PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomStringVariable(
		"seriesweb.retry_delays", "Waits before the second and later attempts of a delivery.",
		"A comma-separated list; the last entry repeats.", &retry_delays_text, "5s, 5min",
		PGC_SIGHUP, GUC_LIST_INPUT, check_retry_delays, assign_retry_delays, NULL);
	DefineCustomStringVariable(
		"seriesweb.allowed_networks",
		"Networks that webhooks may reach although private, loopback or link-local.",
		"A comma-separated list of CIDRs, such as 10.1.0.0/16.", &sw_allowed_networks, "",
		PGC_SIGHUP, GUC_LIST_INPUT, sw_guard_check_allowed_networks,
		sw_guard_assign_allowed_networks, NULL);
	DefineCustomIntVariable(
		"seriesweb.response_body_limit", "How much of each response body is kept.", NULL,
		&sw_response_body_limit, 8192, 0, 1024 * 1024, PGC_SIGHUP, GUC_UNIT_BYTE, NULL, NULL, NULL);
	/* Up to max_concurrency bodies are in the worker's memory at once. */
	DefineCustomIntVariable("seriesweb.max_body_size",
							"Largest rendered webhook body; a delivery with a larger one fails.",
							NULL, &sw_max_body_size, 256 * 1024, 1024, 16 * 1024 * 1024, PGC_SIGHUP,
							GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomIntVariable("seriesweb.retention",
							"Age after which finished deliveries and their attempts are purged.",
							"Counts in the stats views are kept.", &sw_retention_s, 30 * 24 * 3600,
							60, INT_MAX, PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	/* Also a server-start setting. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable(
			"seriesweb.known_users", "User ids remembered in shared memory as existing.",
			"Events of a remembered user need no lookup to create missing users; "
			"each entry takes 80 bytes.  0 turns the memory off.",
			&sw_known_users, 65536, 0, 4 * 1024 * 1024, PGC_POSTMASTER, 0, NULL, NULL, NULL);
#if PG_VERSION_NUM >= 150000
	MarkGUCPrefixReserved("seriesweb");
#else
	EmitWarningsOnPlaceholders("seriesweb");
#endif
}
