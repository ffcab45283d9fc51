/*-------------------------------------------------------------------------
 *
 * sign.h
 *	  Standard Webhooks signatures: webhook-id, webhook-timestamp and
 *	  webhook-signature headers for blocks that have a secret.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SIGN_H
#define SERIESWEB_SIGN_H

#include "postgres.h"

/* Refuse a secret that cannot be used (ereport), at definition time. */
extern void sw_check_secret(const char *secret);

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", palloc'd. */
extern char *sw_signature(const char *secret, const char *msg_id, int64 timestamp, const char *body,
						  int body_len);

/*
 * Return headers with the three signing headers appended (a new palloc'd
 * array; the strings of headers are shared), timestamped now.
 */
extern char **sw_sign_headers(const char *secret, const char *msg_id, const char *body,
							  int body_len, char **headers, int *nheaders);

#endif /* SERIESWEB_SIGN_H */
