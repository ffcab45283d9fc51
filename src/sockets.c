/*-------------------------------------------------------------------------
 *
 * sockets.c
 *	  Opening and closing the connections of webhook requests, for libcurl.
 *
 * sender.c installs these callbacks on every easy handle, so every socket
 * libcurl opens comes from here: after DNS resolution, for every address
 * libcurl tries.  The destination guard (guard.c) decides whether the
 * address may be reached; then the socket is counted against the server's
 * file descriptor budget, as fd.c counts its own, so that in-flight
 * requests cannot starve the backend of descriptors.  Running out is
 * reported as a configuration problem naming seriesweb.max_concurrency.
 *
 * Both callbacks run inside libcurl, where an ereport would longjmp through
 * curl's stack: what went wrong is written into the request's SwRefusal,
 * which sender.c turns into the request's error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guard.h"
#include "settings.h"
#include "sockets.h"
#include "storage/fd.h"

/* Running out of descriptors is a configuration problem: say which. */
static void
describe_socket_failure(const struct curl_sockaddr *address, int err, SwRefusal *refusal)
{
	char text[INET6_ADDRSTRLEN];

	sw_guard_format_sockaddr(address->family, &address->addr, address->addrlen, text, sizeof(text));
	if (err == EMFILE || err == ENFILE)
		snprintf(refusal->summary, sizeof(refusal->summary),
				 "could not open a connection: %s (each request in flight holds a file "
				 "descriptor: lower seriesweb.max_concurrency, now %d, or raise the server's "
				 "open files limit)",
				 strerror(err), sw_max_concurrency);
	else
		snprintf(refusal->summary, sizeof(refusal->summary), "could not open a connection: %s",
				 strerror(err));
	/* The summary with the address after "connection". */
	snprintf(refusal->error, sizeof(refusal->error), "could not open a connection to %s%s", text,
			 refusal->summary + strlen("could not open a connection"));
}

curl_socket_t
sw_open_guarded_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *address)
{
	SwRefusal	 *refusal = (SwRefusal *) clientp;
	int			  type = address->socktype;
	curl_socket_t fd;

	if (!sw_guard_allows(address->family, &address->addr, address->addrlen, refusal))
		return CURL_SOCKET_BAD;
#ifdef SOCK_CLOEXEC
	/* A kept-alive connection must not leak into COPY ... PROGRAM children. */
	type |= SOCK_CLOEXEC;
#endif
	/* Count it against the server's descriptor budget, as fd.c would. */
	if (!AcquireExternalFD())
	{
		describe_socket_failure(address, EMFILE, refusal);
		return CURL_SOCKET_BAD;
	}
	fd = socket(address->family, type, address->protocol);
	if (fd == CURL_SOCKET_BAD)
	{
		describe_socket_failure(address, errno, refusal);
		ReleaseExternalFD();
	}
	return fd;
}

int
sw_close_guarded_socket(void *clientp, curl_socket_t fd)
{
	int rc = close(fd);

	ReleaseExternalFD();
	return rc;
}
