/*-------------------------------------------------------------------------
 *
 * users_cache.h
 *	  User ids known to exist (a set in shared memory), so that events of
 *	  known users skip the statement that creates missing users.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_USERS_CACHE_H
#define SERIESWEB_USERS_CACHE_H

#include "postgres.h"

/* Shared memory: request it (shmem_request_hook), then attach to it. */
extern void sw_users_cache_shmem_request(void);
extern void sw_users_cache_shmem_init(void);

/* Install the callbacks; once per backend, at library load. */
extern void sw_users_cache_register(void);

/* Is this user known to exist (committed, not deleted since)? */
extern bool sw_user_known(const text *user_id);

/* This transaction made sure the user exists: known once it commits. */
extern void sw_user_ensured(const text *user_id);

#endif /* SERIESWEB_USERS_CACHE_H */
