/*-------------------------------------------------------------------------
 *
 * test_user.h
 *	  The user an author names when trying a series out: by user_id, email
 *	  or name, as test_webhook(), preview(), journey() and explain() take it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_TEST_USER_H
#define SERIESWEB_TEST_USER_H

#include "attrs.h"

/*
 * Find the one user whose user_id, email (any case) or name is test_user
 * and fill the user and company part of ctx, allocated in cxt.  None or
 * several is an ereport(ERROR) that lists candidates.  Must be called
 * inside SPI_connect; leaves CurrentMemoryContext set to cxt.
 */
extern void sw_test_user_load(const char *test_user, SwContext *ctx, MemoryContext cxt);

#endif /* SERIESWEB_TEST_USER_H */
