/*-------------------------------------------------------------------------
 *
 * target_guard.c
 *	  Fuzz target "guard": parse seriesweb.allowed_networks with the
 *	  setting's check hook, then classify one address both ways the guard
 *	  sees addresses: as text (seriesweb._classify_address and
 *	  _address_allowed) and as libcurl hands it to the socket callback
 *	  (sockets.c, which asks the guard).
 *
 * Input: two sections (harness.h) — the setting's value and an address.
 *
 * The check hook must report a bad value by returning false with a detail,
 * never by an ERROR (guc.c calls it where an ERROR is not allowed), and the
 * socket callback must not raise one either (it runs inside libcurl).  The
 * SQL functions may refuse a malformed address with an ERROR.  Oracles:
 *	- the callback opens a socket exactly when _address_allowed says yes;
 *	- a refusal says why, naming the setting that would allow it;
 *	- a public address, or one the setting lists verbatim, is allowed.
 * No connection is ever made: an allowed address gets a socket, closed at
 * once (with the matching close callback, which returns the descriptor to
 * the server's budget).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "guard.h"
#include "harness.h"
#include "sockets.h"

enum
{
	SEC_NETWORKS,
	SEC_ADDRESS,
	NSECTIONS
};

/* SQL-callable functions of guard.c, not in guard.h: only SQL calls them. */
extern Datum sw_classify_address(PG_FUNCTION_ARGS);
extern Datum sw_address_allowed(PG_FUNCTION_ARGS);

/* libcurl's curl_sockaddr with room for an IPv6 address, as curl allocates it. */
typedef struct SockaddrEx
{
	int						family;
	int						socktype;
	int						protocol;
	unsigned int			addrlen;
	struct sockaddr_storage addr;
} SockaddrEx;

StaticAssertDecl(offsetof(SockaddrEx, addr) == offsetof(struct curl_sockaddr, addr),
				 "SockaddrEx must start like struct curl_sockaddr");

/*
 * The address as libcurl passes it, in a chunk exactly as long as curl's
 * (so that ASan catches a read past addrlen); NULL if text is not one.
 */
static struct curl_sockaddr *
to_sockaddr(const char *text)
{
	int			 family = strchr(text, ':') ? AF_INET6 : AF_INET;
	unsigned int len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	SockaddrEx	*sa = palloc0(offsetof(SockaddrEx, addr) + len);
	void		*bytes = family == AF_INET ? (void *) &((struct sockaddr_in *) &sa->addr)->sin_addr
										   : (void *) &((struct sockaddr_in6 *) &sa->addr)->sin6_addr;

	if (inet_pton(family, text, bytes) != 1)
		return NULL;
	sa->family = family;
	sa->socktype = SOCK_STREAM;
	sa->protocol = IPPROTO_TCP;
	sa->addrlen = len;
	((struct sockaddr *) &sa->addr)->sa_family = family;
	return (struct curl_sockaddr *) sa;
}

/* Does the comma-separated list hold this exact entry (blanks trimmed)? */
static bool
lists_verbatim(const char *list, const char *address)
{
	size_t len = strlen(address);

	for (const char *p = list; *p;)
	{
		const char *end = p + strcspn(p, ",");
		const char *last = end;

		while (p < end && isspace((unsigned char) *p))
			p++;
		while (last > p && isspace((unsigned char) last[-1]))
			last--;
		if (len > 0 && (size_t) (last - p) == len && memcmp(p, address, len) == 0)
			return true;
		p = *end ? end + 1 : end;
	}
	return false;
}

/*
 * Call the socket callback for an address that may or may not be one.
 * Returns whether it let the connection go ahead; *verdict is false when
 * it did not get to decide (socket() itself failed).
 */
static bool
open_socket(const char *address, SwRefusal *refusal, bool *verdict)
{
	struct curl_sockaddr *sa = to_sockaddr(address);
	struct curl_sockaddr  unknown = {.family = AF_UNIX, .socktype = SOCK_STREAM};
	curl_socket_t		  fd;

	sw_fuzz_no_error_begin("sw_open_guarded_socket");
	fd = sw_open_guarded_socket(refusal, CURLSOCKTYPE_IPCXN, sa ? sa : &unknown);
	sw_fuzz_no_error_end();
	if (strnlen(refusal->error, sizeof(refusal->error)) == sizeof(refusal->error))
		sw_fuzz_finding("the refusal is not NUL-terminated");
	if (fd == CURL_SOCKET_BAD && refusal->error[0] == '\0')
		sw_fuzz_finding("address \"%s\" refused without a reason", address);
	if (fd != CURL_SOCKET_BAD)
		sw_close_guarded_socket(refusal, fd);
	if (sa == NULL && fd != CURL_SOCKET_BAD)
		sw_fuzz_finding("a socket was opened for the non-IP address \"%s\"", address);
	*verdict = fd != CURL_SOCKET_BAD || strncmp(refusal->error, "could not open", 14) != 0;
	return fd != CURL_SOCKET_BAD;
}

static void
classify(const char *networks, const char *address, SwFuzzCounts *counts)
{
	SwRefusal refusal;
	bool	  opened;
	bool	  verdict;
	bool	  allowed;
	char	 *cls;

	memset(&refusal, 0, sizeof(refusal));
	opened = open_socket(address, &refusal, &verdict);
	/* The SQL functions refuse what is not an address, with an ERROR. */
	cls =
		TextDatumGetCString(DirectFunctionCall1(sw_classify_address, CStringGetTextDatum(address)));
	allowed = DatumGetBool(DirectFunctionCall1(sw_address_allowed, CStringGetTextDatum(address)));
	counts->accepted++;
	if (!verdict)
		return;
	if (opened != allowed)
		sw_fuzz_finding("address \"%s\" (%s): the socket callback %s it, _address_allowed says %s",
						address, cls, opened ? "allowed" : "refused",
						allowed ? "allowed" : "refused");
	if (!allowed && strstr(refusal.error, "seriesweb.allowed_networks") == NULL)
		sw_fuzz_finding("refusal of \"%s\" does not name the setting: %s", address, refusal.error);
	if (!allowed && (strcmp(cls, "public") == 0 || lists_verbatim(networks, address)))
		sw_fuzz_finding("address \"%s\" (%s) refused although public or listed in \"%s\"", address,
						cls, networks);
}

static void
run_guard(const char *data, size_t size, SwFuzzCounts *counts)
{
	char *sec[NSECTIONS];
	char *networks;
	void *extra = NULL;
	bool  valid;

	sw_fuzz_sections(data, size, sec, NSECTIONS);
	counts->decoded++; /* nothing to decode: both are plain text */
	networks = sec[SEC_NETWORKS];
	GUC_check_errmsg_string = GUC_check_errdetail_string = GUC_check_errhint_string = NULL;
	sw_fuzz_no_error_begin("sw_guard_check_allowed_networks");
	valid = sw_guard_check_allowed_networks(&networks, &extra, PGC_S_SESSION);
	sw_fuzz_no_error_end();
	if (!valid)
	{
		if (GUC_check_errdetail_string == NULL)
			sw_fuzz_finding("allowed_networks \"%s\" refused without a detail", networks);
		/* guc.c would now raise the ERROR, whose cleanup frees the strings */
		FlushErrorState();
		return;
	}

	/* Installed as guc.c would, and uninstalled whatever happens. */
	sw_guard_assign_allowed_networks(networks, extra);
	PG_TRY();
	{
		classify(networks, sec[SEC_ADDRESS], counts);
	}
	PG_FINALLY();
	{
		sw_guard_assign_allowed_networks("", NULL);
#if PG_VERSION_NUM >= 160000
		guc_free(extra);
#else
		free(extra);
#endif
	}
	PG_END_TRY();
}

const SwFuzzTarget sw_fuzz_guard_target = {"guard", run_guard};
