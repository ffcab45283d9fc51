/*-------------------------------------------------------------------------
 *
 * drop_database.h
 *	  The utility hook that lets DROP DATABASE stop a database's worker.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_DROP_DATABASE_H
#define SERIESWEB_DROP_DATABASE_H

/* In every process, at library load (shared_preload_libraries). */
extern void sw_drop_database_register(void);

#endif /* SERIESWEB_DROP_DATABASE_H */
