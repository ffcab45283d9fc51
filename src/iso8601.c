/*-------------------------------------------------------------------------
 *
 * iso8601.c
 *	  The ISO 8601 timestamps of rule filters: filter.c orders a string
 *	  attribute against a timestamp "value" with sw_parse_iso_timestamp.
 *
 * PostgreSQL 15 has no non-throwing timestamptz input, and timestamptz_in
 * would make a filter's meaning depend on the session (DateStyle reads
 * "01/02/2024" either way, TimeZone places an offset-less time, "now" and
 * "epoch" are accepted).  So this small parser accepts exactly the extended
 * ISO 8601 / RFC 3339 forms:
 *	 YYYY-MM-DD
 *	 YYYY-MM-DD(T| )HH:MM[:SS[.fraction]][Z | (+|-)HH[[:]MM[[:]SS]]]
 * (event.occurred_at's form included).  A time without offset is UTC, so a
 * filter means the same in every session.  Years 0001-9999; fractions are
 * rounded to microseconds; no leap seconds, no 24:00.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/datetime.h"

#include "iso8601.h"

/* Read exactly n digits. */
static bool
read_digits(const char **p, const char *end, int n, int *out)
{
	int v = 0;

	if (end - *p < n)
		return false;
	for (int i = 0; i < n; i++)
	{
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

/* Consume c if it is next. */
static bool
skip_char(const char **p, const char *end, char c)
{
	if (*p < end && **p == c)
	{
		(*p)++;
		return true;
	}
	return false;
}

/* ".fraction" after the seconds, as microseconds. */
static bool
read_fraction(const char **p, const char *end, int64 *usec)
{
	int64 scale = 100000;
	int	  ndigits = 0;

	*usec = 0;
	if (!skip_char(p, end, '.'))
		return true;
	for (; *p < end && **p >= '0' && **p <= '9'; (*p)++, ndigits++)
	{
		if (scale > 0)
			*usec += (**p - '0') * scale;
		else if (ndigits == 6 && **p >= '5')
			(*usec)++;
		scale /= 10;
	}
	return ndigits > 0;
}

/* HH:MM[:SS[.fraction]] as microseconds since midnight. */
static bool
read_time(const char **p, const char *end, int64 *usec)
{
	int	  hour, min, sec = 0;
	int64 frac = 0;

	if (!read_digits(p, end, 2, &hour) || !skip_char(p, end, ':') || !read_digits(p, end, 2, &min))
		return false;
	if (skip_char(p, end, ':') && (!read_digits(p, end, 2, &sec) || !read_fraction(p, end, &frac)))
		return false;
	if (hour > 23 || min > 59 || sec > 59)
		return false;
	*usec = ((int64) hour * SECS_PER_HOUR + min * SECS_PER_MINUTE + sec) * USECS_PER_SEC + frac;
	return true;
}

/* Nothing (UTC), Z, or +HH[[:]MM[[:]SS]], as seconds east of UTC. */
static bool
read_offset(const char **p, const char *end, int *seconds)
{
	int sign, hh, mm = 0, ss = 0;

	*seconds = 0;
	if (*p == end || skip_char(p, end, 'Z') || skip_char(p, end, 'z'))
		return true;
	if (skip_char(p, end, '+'))
		sign = 1;
	else if (skip_char(p, end, '-'))
		sign = -1;
	else
		return false;
	if (!read_digits(p, end, 2, &hh))
		return false;
	if (*p < end)
	{
		skip_char(p, end, ':');
		if (!read_digits(p, end, 2, &mm))
			return false;
	}
	if (*p < end)
	{
		skip_char(p, end, ':');
		if (!read_digits(p, end, 2, &ss))
			return false;
	}
	if (hh > 15 || mm > 59 || ss > 59)
		return false;
	*seconds = sign * (hh * SECS_PER_HOUR + mm * SECS_PER_MINUTE + ss);
	return true;
}

/* Parse s[0..len) as above; false (never an error) when it is not one. */
bool
sw_parse_iso_timestamp(const char *s, int len, TimestampTz *result)
{
	const char *p = s;
	const char *end = s + len;
	int			year, mon, day, offset = 0;
	int64		time = 0;

	if (!read_digits(&p, end, 4, &year) || !skip_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &mon) || !skip_char(&p, end, '-') ||
		!read_digits(&p, end, 2, &day))
		return false;
	if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > day_tab[isleap(year) ? 1 : 0][mon - 1])
		return false;
	if (p < end)
	{
		if (*p != 'T' && *p != 't' && *p != ' ')
			return false;
		p++;
		if (!read_time(&p, end, &time) || !read_offset(&p, end, &offset))
			return false;
	}
	if (p != end)
		return false;
	*result = (int64) (date2j(year, mon, day) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY + time -
			  (int64) offset * USECS_PER_SEC;
	return true;
}
