/*-------------------------------------------------------------------------
 *
 * guard.h
 *	  The destination guard: which addresses a webhook request may connect
 *	  to.  sender.c installs sw_guard_open_socket on every libcurl handle, so
 *	  each connection is checked after DNS resolution; settings.c wires the
 *	  seriesweb.allowed_networks hooks.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_GUARD_H
#define SERIESWEB_GUARD_H

#include "postgres.h"

#include <curl/curl.h>

#include "utils/guc.h"

/*
 * CURLOPT_OPENSOCKETFUNCTION; clientp is the SwTransfer.  Opens the socket
 * when the resolved address may be reached, otherwise writes why into the
 * transfer's guard_error and returns CURL_SOCKET_BAD (never ereports).
 */
extern curl_socket_t sw_guard_open_socket(void *clientp, curlsocktype purpose,
										  struct curl_sockaddr *address);

/* CURLOPT_CLOSESOCKETFUNCTION: close a socket opened above, release its budget. */
extern int sw_guard_close_socket(void *clientp, curl_socket_t fd);

/* Check and assign hooks of seriesweb.allowed_networks. */
extern bool sw_guard_check_allowed_networks(char **newval, void **extra, GucSource source);
extern void sw_guard_assign_allowed_networks(const char *newval, void *extra);

#endif /* SERIESWEB_GUARD_H */
