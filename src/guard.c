/*-------------------------------------------------------------------------
 *
 * guard.c
 *	  The destination guard: webhook requests connect only to public
 *	  addresses, and to the networks seriesweb.allowed_networks names.
 *
 A webhook sender is an SSRF tool by design: whoever may define a block
 * makes the database server send requests.  So the check sits where libcurl
 * opens a socket (sockets.c, libcurl's CURLOPT_OPENSOCKETFUNCTION): after
 * DNS resolution, for every connection and every address libcurl falls back
 * to.  A name that resolves to a public address once and to 127.0.0.1 the
 * next time (DNS rebinding) is caught the second time; kept-alive
 * connections were checked when they were opened.
 *
 * Classification uses fixed tables taken from IANA's IPv4 and IPv6
 * special-purpose registries.  An IPv6 address that carries an IPv4 address
 * (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4) is classified by
 * that IPv4 address, because that is where its packets end up; for the same
 * reason an IPv4 entry of seriesweb.allowed_networks also covers those
 * encodings of the addresses it contains.
 *
 * The setting's check hook parses it once per reload into a flat array
 * (the GUC "extra"), so sw_guard_allows does no parsing and no allocation:
 * it runs inside libcurl, where an ereport would longjmp through curl's
 * stack.  Refusals are written into the caller's SwRefusal instead.  The
 * guard only judges addresses: opening sockets is sockets.c's job.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "fmgr.h"
#include "guard.h"
#include "utils/builtins.h"

#define ALLOW_HINT "(allow it with seriesweb.allowed_networks)"

/* Longest allowed_networks entry we accept: an IPv6 address and "/128". */
#define MAX_ENTRY_LEN (INET6_ADDRSTRLEN + 4)

typedef enum SwAddressClass
{
	SW_ADDR_PUBLIC,
	SW_ADDR_UNSPECIFIED,
	SW_ADDR_THIS_NETWORK,
	SW_ADDR_LOOPBACK,
	SW_ADDR_PRIVATE,
	SW_ADDR_CGNAT,
	SW_ADDR_LINK_LOCAL,
	SW_ADDR_MULTICAST,
	SW_ADDR_BROADCAST,
	SW_ADDR_RESERVED
} SwAddressClass;

/* As _classify_address() returns them and refusals print them. */
static const char *const class_names[] = {
	[SW_ADDR_PUBLIC] = "public",
	[SW_ADDR_UNSPECIFIED] = "unspecified",
	[SW_ADDR_THIS_NETWORK] = "this-network",
	[SW_ADDR_LOOPBACK] = "loopback",
	[SW_ADDR_PRIVATE] = "private",
	[SW_ADDR_CGNAT] = "cgnat",
	[SW_ADDR_LINK_LOCAL] = "link-local",
	[SW_ADDR_MULTICAST] = "multicast",
	[SW_ADDR_BROADCAST] = "broadcast",
	[SW_ADDR_RESERVED] = "reserved",
};

/* An IPv4 address in bytes[0..3], or an IPv6 address. */
typedef struct SwAddress
{
	int	  family; /* AF_INET or AF_INET6 */
	uint8 bytes[16];
} SwAddress;

/* A network: the addresses whose first bits equal those of addr. */
typedef struct SwNetwork
{
	SwAddress addr;
	int		  bits;
} SwNetwork;

/* Parsed seriesweb.allowed_networks, owned by guc.c as the setting's extra. */
typedef struct SwNetworkList
{
	int		  count;
	SwNetwork nets[FLEXIBLE_ARRAY_MEMBER];
} SwNetworkList;

static const SwNetworkList *allowed_networks = NULL;

/* A special-purpose range of the tables below. */
typedef struct SwRange
{
	uint8		   bytes[16];
	int			   bits;
	SwAddressClass cls;
} SwRange;

/* An IPv6 prefix whose addresses carry an IPv4 address at offset. */
typedef struct SwEncoding
{
	uint8		bytes[16];
	int			bits;
	int			offset;
	const char *name;
} SwEncoding;

/* What the guard thinks of an address. */
typedef struct SwVerdict
{
	SwAddressClass cls;
	const char	  *encoding; /* IPv6 form of an IPv4 address, or NULL */
	SwAddress	   ipv4;	 /* that IPv4 address */
} SwVerdict;

#define V4(a, b, c, d) \
	{                  \
		a, b, c, d     \
	}
/* IPv6 as written: eight 16-bit groups. */
#define G(x) (((x) >> 8) & 0xff), ((x) &0xff)
#define V6(a, b, c, d, e, f, g, h)                     \
	{                                                  \
		G(a), G(b), G(c), G(d), G(e), G(f), G(g), G(h) \
	}

/* First match wins, so a range comes before any range that contains it. */
static const SwRange ipv4_ranges[] = {
	{V4(0, 0, 0, 0), 32, SW_ADDR_UNSPECIFIED},
	{V4(0, 0, 0, 0), 8, SW_ADDR_THIS_NETWORK}, /* Linux connects 0/8 locally */
	{V4(10, 0, 0, 0), 8, SW_ADDR_PRIVATE},	   /* RFC 1918 */
	{V4(100, 64, 0, 0), 10, SW_ADDR_CGNAT},	   /* RFC 6598 shared address space */
	{V4(127, 0, 0, 0), 8, SW_ADDR_LOOPBACK},
	{V4(169, 254, 0, 0), 16, SW_ADDR_LINK_LOCAL}, /* cloud metadata lives here */
	{V4(172, 16, 0, 0), 12, SW_ADDR_PRIVATE},
	{V4(192, 0, 0, 0), 24, SW_ADDR_RESERVED},	/* IETF protocol assignments */
	{V4(192, 0, 2, 0), 24, SW_ADDR_RESERVED},	/* TEST-NET-1 (documentation) */
	{V4(192, 88, 99, 0), 24, SW_ADDR_RESERVED}, /* 6to4 relay anycast, deprecated */
	{V4(192, 168, 0, 0), 16, SW_ADDR_PRIVATE},
	{V4(198, 18, 0, 0), 15, SW_ADDR_RESERVED},	 /* benchmarking */
	{V4(198, 51, 100, 0), 24, SW_ADDR_RESERVED}, /* TEST-NET-2 */
	{V4(203, 0, 113, 0), 24, SW_ADDR_RESERVED},	 /* TEST-NET-3 */
	{V4(224, 0, 0, 0), 4, SW_ADDR_MULTICAST},
	{V4(255, 255, 255, 255), 32, SW_ADDR_BROADCAST},
	{V4(240, 0, 0, 0), 4, SW_ADDR_RESERVED}, /* former class E */
};

/*
 * None of these overlaps an encoding below except :: and ::1, which must
 * win over IPv4-compatible ::/96; so this table is looked at first.
 */
static const SwRange ipv6_ranges[] = {
	{V6(0, 0, 0, 0, 0, 0, 0, 0), 128, SW_ADDR_UNSPECIFIED},
	{V6(0, 0, 0, 0, 0, 0, 0, 1), 128, SW_ADDR_LOOPBACK},
	/* RFC 8215 local-use NAT64: where the IPv4 address sits is local policy */
	{V6(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, SW_ADDR_PRIVATE},
	{V6(0x100, 0, 0, 0, 0, 0, 0, 0), 64, SW_ADDR_RESERVED}, /* discard-only */
	/* IETF protocol assignments: Teredo, benchmarking, ORCHID, ... */
	{V6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, SW_ADDR_RESERVED},
	{V6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, SW_ADDR_RESERVED}, /* documentation */
	{V6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, SW_ADDR_RESERVED},	 /* documentation */
	{V6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, SW_ADDR_PRIVATE},		 /* unique local */
	{V6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, SW_ADDR_LINK_LOCAL},
	{V6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, SW_ADDR_PRIVATE}, /* site-local, deprecated */
	{V6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, SW_ADDR_MULTICAST},
};

static const SwEncoding ipv4_encodings[] = {
	{V6(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, 12, "IPv4-mapped"},
	{V6(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, 12, "NAT64"},
	{V6(0x2002, 0, 0, 0, 0, 0, 0, 0), 16, 2, "6to4"},
	{V6(0, 0, 0, 0, 0, 0, 0, 0), 96, 12, "IPv4-compatible"},
};

/* Global unicast: every IPv6 address outside it and the above is reserved. */
static const uint8 ipv6_global[16] = V6(0x2000, 0, 0, 0, 0, 0, 0, 0);

/* ------------------------------------------------------------------------
 * Classification
 * ------------------------------------------------------------------------
 */

static bool
prefix_matches(const uint8 *addr, const uint8 *net, int bits)
{
	int	  whole = bits / 8;
	int	  rest = bits % 8;
	uint8 mask;

	if (memcmp(addr, net, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8) (0xff << (8 - rest));
	return (addr[whole] & mask) == (net[whole] & mask);
}

static SwAddressClass
classify_ipv4(const uint8 *bytes)
{
	for (int i = 0; i < lengthof(ipv4_ranges); i++)
		if (prefix_matches(bytes, ipv4_ranges[i].bytes, ipv4_ranges[i].bits))
			return ipv4_ranges[i].cls;
	return SW_ADDR_PUBLIC;
}

static void
classify_ipv6(const uint8 *bytes, SwVerdict *v)
{
	for (int i = 0; i < lengthof(ipv6_ranges); i++)
		if (prefix_matches(bytes, ipv6_ranges[i].bytes, ipv6_ranges[i].bits))
		{
			v->cls = ipv6_ranges[i].cls;
			return;
		}
	for (int i = 0; i < lengthof(ipv4_encodings); i++)
	{
		const SwEncoding *e = &ipv4_encodings[i];

		if (!prefix_matches(bytes, e->bytes, e->bits))
			continue;
		v->encoding = e->name;
		v->ipv4.family = AF_INET;
		memcpy(v->ipv4.bytes, bytes + e->offset, 4);
		v->cls = classify_ipv4(v->ipv4.bytes);
		return;
	}
	v->cls = prefix_matches(bytes, ipv6_global, 3) ? SW_ADDR_PUBLIC : SW_ADDR_RESERVED;
}

static void
classify(const SwAddress *a, SwVerdict *v)
{
	memset(v, 0, sizeof(*v));
	if (a->family == AF_INET)
		v->cls = classify_ipv4(a->bytes);
	else
		classify_ipv6(a->bytes, v);
}

static bool
network_covers(const SwNetwork *n, const SwAddress *a)
{
	return n->addr.family == a->family && prefix_matches(a->bytes, n->addr.bytes, n->bits);
}

/* Public, or covered by seriesweb.allowed_networks. */
static bool
is_allowed(const SwAddress *a, const SwVerdict *v)
{
	const SwNetworkList *list = allowed_networks;

	if (v->cls == SW_ADDR_PUBLIC)
		return true;
	for (int i = 0; list != NULL && i < list->count; i++)
		if (network_covers(&list->nets[i], a) ||
			(v->encoding != NULL && network_covers(&list->nets[i], &v->ipv4)))
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Text forms
 * ------------------------------------------------------------------------
 */

/* One address, strictly: no brackets, zone, port or prefix length. */
static bool
parse_address(const char *text, SwAddress *a)
{
	memset(a, 0, sizeof(*a));
	a->family = strchr(text, ':') != NULL ? AF_INET6 : AF_INET;
	return inet_pton(a->family, text, a->bytes) == 1;
}

static void
format_address(const SwAddress *a, char *buf, size_t len)
{
	if (inet_ntop(a->family, a->bytes, buf, len) == NULL)
		strlcpy(buf, "?", len);
}

/* Why a connection was refused, and the same without the address. */
static void
describe_refusal(const SwAddress *a, const SwVerdict *v, SwRefusal *refusal)
{
	char text[INET6_ADDRSTRLEN];
	char ipv4[INET6_ADDRSTRLEN];

	format_address(a, text, sizeof(text));
	snprintf(refusal->summary, sizeof(refusal->summary),
			 "destination refused: %s address " ALLOW_HINT, class_names[v->cls]);
	if (v->encoding == NULL)
	{
		snprintf(refusal->error, sizeof(refusal->error),
				 "destination %s refused: %s address " ALLOW_HINT, text, class_names[v->cls]);
		return;
	}
	format_address(&v->ipv4, ipv4, sizeof(ipv4));
	snprintf(refusal->error, sizeof(refusal->error),
			 "destination %s refused: %s address %s in %s form " ALLOW_HINT, text,
			 class_names[v->cls], ipv4, v->encoding);
}

/* ------------------------------------------------------------------------
 * Addresses as libcurl hands them to sockets.c
 * ------------------------------------------------------------------------
 */

static bool
address_from_sockaddr(int family, const struct sockaddr *sa, size_t addrlen, SwAddress *a)
{
	memset(a, 0, sizeof(*a));
	a->family = family;
	if (family == AF_INET && addrlen >= sizeof(struct sockaddr_in))
		memcpy(a->bytes, &((const struct sockaddr_in *) sa)->sin_addr, 4);
	else if (family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6))
		memcpy(a->bytes, &((const struct sockaddr_in6 *) sa)->sin6_addr, 16);
	else
		return false;
	return true;
}

bool
sw_guard_allows(int family, const struct sockaddr *addr, size_t addrlen, SwRefusal *refusal)
{
	SwAddress a;
	SwVerdict v;

	if (!address_from_sockaddr(family, addr, addrlen, &a))
	{
		snprintf(refusal->error, sizeof(refusal->error),
				 "destination refused: address family %d is neither IPv4 nor IPv6", family);
		strlcpy(refusal->summary, refusal->error, sizeof(refusal->summary));
		return false;
	}
	classify(&a, &v);
	if (is_allowed(&a, &v))
		return true;
	describe_refusal(&a, &v, refusal);
	return false;
}

void
sw_guard_format_sockaddr(int family, const struct sockaddr *addr, size_t addrlen, char *buf,
						 size_t len)
{
	SwAddress a;

	if (address_from_sockaddr(family, addr, addrlen, &a))
		format_address(&a, buf, len);
	else
		strlcpy(buf, "?", len);
}

/* ------------------------------------------------------------------------
 * seriesweb.allowed_networks
 * ------------------------------------------------------------------------
 */

/* GUC extras are freed by guc.c: PG 16 moved them to its own allocator. */
static void *
extra_alloc(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

static void
extra_free(void *p)
{
#if PG_VERSION_NUM >= 160000
	guc_free(p);
#else
	free(p);
#endif
}

static bool
parse_prefix_length(const char *text, int max, int *bits)
{
	int len = strlen(text);

	if (len == 0 || len > 3 || strspn(text, "0123456789") != len)
		return false;
	*bits = atoi(text);
	return *bits <= max;
}

/* The network's address with the bits right of the prefix cleared. */
static void
clear_host_bits(SwNetwork *n)
{
	for (int i = 0; i < 16; i++)
	{
		int keep = Min(Max(n->bits - 8 * i, 0), 8);

		n->addr.bytes[i] &= (uint8) (0xff00 >> keep);
	}
}

/* Parse one trimmed entry; false (with the GUC error detail) if it is bad. */
static bool
parse_network(const char *entry, SwNetwork *n)
{
	char	  addr[MAX_ENTRY_LEN + 1];
	char	 *slash;
	int		  max;
	SwNetwork clean;
	char	  clean_text[INET6_ADDRSTRLEN];

	strlcpy(addr, entry, sizeof(addr));
	slash = strchr(addr, '/');
	if (slash != NULL)
		*slash = '\0';
	if (!parse_address(addr, &n->addr))
	{
		GUC_check_errdetail(
			"Entry \"%s\" is not an IPv4 or IPv6 address with an optional prefix length.", entry);
		return false;
	}
	max = n->addr.family == AF_INET ? 32 : 128;
	n->bits = max;
	if (slash != NULL && !parse_prefix_length(slash + 1, max, &n->bits))
	{
		GUC_check_errdetail(
			"Entry \"%s\" has an invalid prefix length; for %s it is a number from 0 to %d.", entry,
			n->addr.family == AF_INET ? "IPv4" : "IPv6", max);
		return false;
	}
	clean = *n;
	clear_host_bits(&clean);
	if (memcmp(clean.addr.bytes, n->addr.bytes, 16) != 0)
	{
		format_address(&clean.addr, clean_text, sizeof(clean_text));
		GUC_check_errdetail(
			"Entry \"%s\" has bits set to the right of its prefix length; the network is %s/%d.",
			entry, clean_text, n->bits);
		return false;
	}
	return true;
}

/* Split on commas, trim blanks, parse each entry into list. */
static bool
parse_network_list(const char *value, SwNetworkList *list)
{
	const char *p = value;

	if (value[strspn(value, " \t\r\n")] == '\0')
		return true;
	for (int index = 1;; index++)
	{
		const char *end = p + strcspn(p, ",");
		char		entry[MAX_ENTRY_LEN + 1];
		int			len;

		while (p < end && isspace((unsigned char) *p))
			p++;
		len = end - p;
		while (len > 0 && isspace((unsigned char) p[len - 1]))
			len--;
		if (len == 0)
		{
			GUC_check_errdetail("Entry %d of the list is empty.", index);
			return false;
		}
		if (len > MAX_ENTRY_LEN)
		{
			GUC_check_errdetail("Entry \"%.*s...\" is too long to be an IPv4 or IPv6 network.", 24,
								p);
			return false;
		}
		strlcpy(entry, p, len + 1);
		if (!parse_network(entry, &list->nets[list->count++]))
			return false;
		if (*end == '\0')
			return true;
		p = end + 1;
	}
}

bool
sw_guard_check_allowed_networks(char **newval, void **extra, GucSource source)
{
	int			   max = 1;
	SwNetworkList *list;

	for (const char *c = *newval; *c; c++)
		max += *c == ',';
	list = extra_alloc(offsetof(SwNetworkList, nets) + max * sizeof(SwNetwork));
	if (list == NULL)
		return false;
	list->count = 0;
	if (!parse_network_list(*newval, list))
	{
		GUC_check_errhint("Write a comma-separated list of networks, such as \"10.1.0.0/16, "
						  "192.168.7.20, fd00::/8\".");
		extra_free(list);
		return false;
	}
	*extra = list;
	return true;
}

void
sw_guard_assign_allowed_networks(const char *newval, void *extra)
{
	allowed_networks = (const SwNetworkList *) extra;
}

/* ------------------------------------------------------------------------
 * SQL-callable functions, for the regression tests
 * ------------------------------------------------------------------------
 */

static void
address_arg(FunctionCallInfo fcinfo, SwAddress *a)
{
	char *input = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!parse_address(input, a))
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid IP address \"%s\"", input),
			 errdetail(
				 "Give one IPv4 or IPv6 address, without brackets, zone, port or prefix length."),
			 errhint("Write it as 192.0.2.1 or 2001:db8::1.")));
}

/* seriesweb._classify_address(address): 'public', 'loopback', ... */
PG_FUNCTION_INFO_V1(sw_classify_address);
Datum
sw_classify_address(PG_FUNCTION_ARGS)
{
	SwAddress a;
	SwVerdict v;

	address_arg(fcinfo, &a);
	classify(&a, &v);
	PG_RETURN_TEXT_P(cstring_to_text(class_names[v.cls]));
}

/* seriesweb._address_allowed(address): would the guard let it connect? */
PG_FUNCTION_INFO_V1(sw_address_allowed);
Datum
sw_address_allowed(PG_FUNCTION_ARGS)
{
	SwAddress a;
	SwVerdict v;

	address_arg(fcinfo, &a);
	classify(&a, &v);
	PG_RETURN_BOOL(is_allowed(&a, &v));
}
