/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  The destination guard: which addresses a webhook request may connect
 *	  to.  sockets.c asks it about every address libcurl is about to
 *	  connect to, after DNS resolution; settings.c wires the
 *	  seriesweb.allowed_networks hooks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_GUARD_H
#define SERIESWEB_GUARD_H

#include "postgres.h"

#include <sys/socket.h>

#include "utils/guc.h"

/* Why no connection was opened: for authors, and without the address for viewers. */
typedef struct SwRefusal
{
	char error[256];   /* "" while nothing was refused */
	char summary[256]; /* the same without the address */
} SwRefusal;

/*
 * May a connection go to this address (family AF_INET or AF_INET6, as
 * libcurl passes it)?  If not, writes why into *refusal.  Allocates nothing
 * and never ereports: it runs inside libcurl.
 */
extern bool sw_guard_allows(int family, const struct sockaddr *addr, size_t addrlen,
							SwRefusal *refusal);

/* The address in text form ("?" if it is not IPv4 or IPv6), for messages. */
extern void sw_guard_format_sockaddr(int family, const struct sockaddr *addr, size_t addrlen,
									 char *buf, size_t len);

/* Check and assign hooks of seriesweb.allowed_networks. */
extern bool sw_guard_check_allowed_networks(char **newval, void **extra, GucSource source);
extern void sw_guard_assign_allowed_networks(const char *newval, void *extra);

#endif /* SERIESWEB_GUARD_H */
