/*-------------------------------------------------------------------------
 *
 * wake.h
 *	  Wake the worker when a transaction that enqueued deliveries commits.
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_WAKE_H
#define SERIESWEB_WAKE_H

/* Once per backend, at library load. */
extern void sw_wake_register(void);

/* Ask for the worker to be woken when the current transaction commits. */
extern void sw_wake_at_commit(void);

#endif /* SERIESWEB_WAKE_H */
