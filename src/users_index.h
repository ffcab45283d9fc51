/*-------------------------------------------------------------------------
 *
 * users_index.h
 *	  Which user ids seriesweb.users holds, asked of its primary key
 *	  directly (see users_index.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_USERS_INDEX_H
#define SERIESWEB_USERS_INDEX_H

#include "postgres.h"

/*
 * Keep, at the front of ids (text datums), those no user row visible to a
 * fresh snapshot has; returns how many.  Never waits for a lock.
 */
extern int sw_users_index_missing(Datum *ids, int n);

#endif /* SERIESWEB_USERS_INDEX_H */
