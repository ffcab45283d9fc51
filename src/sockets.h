/*-------------------------------------------------------------------------
 *
 * sockets.h
 *	  The sockets of webhook requests: libcurl's open and close socket
 *	  callbacks, which sender.c installs on every handle.  Each connection
 *	  is checked by the destination guard (guard.h) and counted against the
 *	  server's file descriptor budget.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SOCKETS_H
#define SERIESWEB_SOCKETS_H

#include "postgres.h"

#include <curl/curl.h>

/*
 * CURLOPT_OPENSOCKETFUNCTION; clientp is the request's SwRefusal (guard.h).
 * Opens the socket when the guard allows the resolved address and a
 * descriptor is left, otherwise writes why into the refusal and returns
 * CURL_SOCKET_BAD (never ereports).
 */
extern curl_socket_t sw_open_guarded_socket(void *clientp, curlsocktype purpose,
											struct curl_sockaddr *address);

/* CURLOPT_CLOSESOCKETFUNCTION: close a socket opened above, release its descriptor. */
extern int sw_close_guarded_socket(void *clientp, curl_socket_t fd);

#endif /* SERIESWEB_SOCKETS_H */
