/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The seriesweb.* settings (GUCs), read by the worker, the sender and the
 *	  test functions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_SETTINGS_H
#define SERIESWEB_SETTINGS_H

#include "postgres.h"

#define SW_MAX_RETRY_DELAYS 8

extern char *sw_database;
extern int	 sw_max_concurrency;
extern int	 sw_timeout_ms;
extern char *sw_allowed_networks;
extern int	 sw_response_body_limit;
extern int	 sw_max_body_size;
extern int	 sw_retention_s;
extern int	 sw_known_users;

/* Parsed seriesweb.retry_delays, in milliseconds. */
extern int sw_retry_delay_count;
extern int sw_retry_delays_ms[SW_MAX_RETRY_DELAYS];

extern void sw_define_settings(void);

/* Does seriesweb.database let the launcher serve this database? */
extern bool sw_database_served(const char *name);

/* Delay before attempt number (failed_attempts + 1), without jitter. */
extern int sw_retry_delay_ms(int failed_attempts);

/* The longest configured retry delay (caps Retry-After). */
extern int sw_longest_retry_delay_ms(void);

#endif /* SERIESWEB_SETTINGS_H */
