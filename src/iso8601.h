/*-------------------------------------------------------------------------
 *
 * iso8601.h
 *	  Parse the ISO 8601 / RFC 3339 timestamps of rule filters without
 *	  depending on the session's DateStyle or TimeZone (iso8601.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_ISO8601_H
#define SERIESWEB_ISO8601_H

#include "datatype/timestamp.h"

/* Parse s[0..len); false (never an error) when it is not such a timestamp. */
extern bool sw_parse_iso_timestamp(const char *s, int len, TimestampTz *result);

#endif /* SERIESWEB_ISO8601_H */
