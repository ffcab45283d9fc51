--
-- The destination guard (src/guard.c): which addresses a webhook request
-- may connect to.  The sender asks the guard about every connection, after
-- DNS resolution; what it decides is shown here through two internal
-- functions, without opening any connection:
--
--   seriesweb._classify_address(address) -> the address's class
--   seriesweb._address_allowed(address)  -> public, or covered by
--                                           seriesweb.allowed_networks
--
-- Each range is shown at its first and last address and at the addresses
-- just outside it.  The regression instance starts with allowed_networks
-- empty, so only public addresses are allowed until it is set below.
--
CREATE EXTENSION seriesweb;
\set SHOW_CONTEXT never

-- guard(address, ...): class and verdict of each address, in order.
CREATE FUNCTION pg_temp.guard(VARIADIC addresses text[])
RETURNS TABLE (address text, class text, allowed bool)
LANGUAGE sql AS $$
	SELECT a, seriesweb._classify_address(a), seriesweb._address_allowed(a)
	  FROM unnest($1) WITH ORDINALITY AS t(a, n) ORDER BY n
$$;

-- A session reads a reloaded configuration between statements, so waiting
-- for a new seriesweb.allowed_networks (at most 10 s) takes statements:
-- wait_statements(value) generates them for \gexec, each returning at once
-- when the session has the value and sleeping 10 ms before that.
CREATE FUNCTION pg_temp.wait_statements(value text) RETURNS SETOF text
LANGUAGE sql AS $$
	SELECT format('DO $d$BEGIN IF current_setting(%L) <> %L THEN PERFORM pg_sleep(0.01); END IF; END$d$',
	              'seriesweb.allowed_networks', $1)
	  FROM generate_series(1, 1000)
$$;

SHOW seriesweb.allowed_networks;

------------------------------------------------------------------------------
-- IPv4
------------------------------------------------------------------------------

-- Public addresses are always allowed.
SELECT * FROM pg_temp.guard('1.1.1.1', '8.8.8.8', '93.184.216.34', '223.255.255.255');

-- 0.0.0.0 is unspecified (Linux connects it to the local host); the rest of
-- 0.0.0.0/8 is "this network".
SELECT * FROM pg_temp.guard('0.0.0.0', '0.0.0.1', '0.255.255.255', '1.0.0.0');

-- Loopback, 127.0.0.0/8.
SELECT * FROM pg_temp.guard('126.255.255.255', '127.0.0.0', '127.0.0.1', '127.255.255.255', '128.0.0.0');

-- Private networks of RFC 1918: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16.
SELECT * FROM pg_temp.guard('9.255.255.255', '10.0.0.0', '10.255.255.255', '11.0.0.0',
                            '172.15.255.255', '172.16.0.0', '172.31.255.255', '172.32.0.0',
                            '192.167.255.255', '192.168.0.0', '192.168.255.255', '192.169.0.0');

-- Carrier-grade NAT (shared address space), 100.64.0.0/10.
SELECT * FROM pg_temp.guard('100.63.255.255', '100.64.0.0', '100.127.255.255', '100.128.0.0');

-- Link-local, 169.254.0.0/16, where cloud metadata services answer.
SELECT * FROM pg_temp.guard('169.253.255.255', '169.254.0.0', '169.254.169.254', '169.254.255.255',
                            '169.255.0.0');

-- Reserved: IETF protocol assignments 192.0.0.0/24, documentation
-- (TEST-NET-1/2/3), the deprecated 6to4 relay anycast 192.88.99.0/24,
-- benchmarking 198.18.0.0/15, and the former class E 240.0.0.0/4.
SELECT * FROM pg_temp.guard('191.255.255.255', '192.0.0.0', '192.0.0.255', '192.0.1.255',
                            '192.0.2.0', '192.0.2.255', '192.0.3.0',
                            '192.88.98.255', '192.88.99.0', '192.88.99.255', '192.88.100.0',
                            '198.17.255.255', '198.18.0.0', '198.19.255.255', '198.20.0.0',
                            '198.51.99.255', '198.51.100.0', '198.51.100.255', '198.51.101.0',
                            '203.0.112.255', '203.0.113.0', '203.0.113.255', '203.0.114.0',
                            '240.0.0.0', '255.255.255.254');

-- Multicast, 224.0.0.0/4, and the limited broadcast address.
SELECT * FROM pg_temp.guard('223.255.255.255', '224.0.0.0', '224.0.0.251', '239.255.255.255',
                            '255.255.255.255');

------------------------------------------------------------------------------
-- IPv6
------------------------------------------------------------------------------

-- Global unicast (2000::/3) is public, but for the special ranges inside it.
SELECT * FROM pg_temp.guard('2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:81b::200e',
                            '2000::', '3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff');

-- Unspecified and loopback.
SELECT * FROM pg_temp.guard('::', '0:0:0:0:0:0:0:0', '::1', '0:0:0:0:0:0:0:1');

-- Unique local fc00::/7 is private, as is the deprecated site-local
-- fec0::/10; link-local is fe80::/10; multicast is ff00::/8.
SELECT * FROM pg_temp.guard('fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fc00::', 'fd00::1',
                            'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe00::',
                            'fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fe80::', 'fe80::1',
                            'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fec0::',
                            'feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ff00::', 'ff02::1',
                            'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff');

-- Reserved: documentation 2001:db8::/32 and 3fff::/20, IETF protocol
-- assignments 2001::/23 (Teredo, benchmarking, ORCHID), discard-only
-- 100::/64, and everything outside 2000::/3 not named above.
SELECT * FROM pg_temp.guard('2001:db7:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8::',
                            '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db9::',
                            '2001::', '2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:200::',
                            '3fff::', '3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff', '3fff:1000::',
                            '100::', '100::ffff:ffff:ffff:ffff', '1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
                            '4000::', '5f00::1');

------------------------------------------------------------------------------
-- IPv6 encodings of IPv4 addresses: classified by the IPv4 address
------------------------------------------------------------------------------

-- IPv4-mapped, ::ffff:0:0/96, written dotted or in hex.
SELECT * FROM pg_temp.guard('::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.1.2.3', '::ffff:172.16.0.1',
                            '::ffff:192.168.1.1', '::ffff:169.254.169.254', '::ffff:100.64.0.1',
                            '::ffff:0.0.0.0', '::ffff:224.0.0.1', '::ffff:255.255.255.255',
                            '::ffff:192.0.2.1', '::ffff:8.8.8.8', '0:0:0:0:0:ffff:808:808');

-- IPv4-compatible, ::/96 (deprecated), but for :: and ::1 above.
SELECT * FROM pg_temp.guard('::127.0.0.1', '::10.0.0.1', '::169.254.169.254', '::0.0.0.2', '::8.8.8.8');

-- Just outside the mapped and compatible prefixes: reserved IPv6.
SELECT * FROM pg_temp.guard('::fffe:ffff:ffff', '::1:0:0:0', '::1:0:0', '::ffff:0:0:0');

-- NAT64, 64:ff9b::/96: the gateway forwards to the embedded address.
SELECT * FROM pg_temp.guard('64:ff9b::127.0.0.1', '64:ff9b::10.0.0.1', '64:ff9b::a9fe:a9fe',
                            '64:ff9b::192.168.0.1', '64:ff9b::8.8.8.8', '64:ff9b::', '64:ff9b::1:0:0',
                            '64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff');

-- Local-use NAT64, 64:ff9b:1::/48: where the IPv4 address sits is the local
-- network's choice, so the whole prefix is private.
SELECT * FROM pg_temp.guard('64:ff9b:1::', '64:ff9b:1:7f00:1::', '64:ff9b:1:ffff:ffff:ffff:ffff:ffff',
                            '64:ff9b:2::');

-- 6to4, 2002::/16: the IPv4 address is in bits 16 to 47.
SELECT * FROM pg_temp.guard('2002:7f00:1::', '2002:a00:1::1', '2002:c0a8:101::', '2002:a9fe:a9fe::1',
                            '2002:ac10::', '2002::', '2002:808:808::1',
                            '2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2003::');

------------------------------------------------------------------------------
-- Bad input
------------------------------------------------------------------------------

-- One address, written as such: no names, prefixes, brackets, zones,
-- blanks, short or octal IPv4 forms.
SELECT seriesweb._classify_address('');
SELECT seriesweb._classify_address('localhost');
SELECT seriesweb._classify_address('127.1');
SELECT seriesweb._classify_address('0x7f.0.0.1');
SELECT seriesweb._classify_address('127.0.0.01');
SELECT seriesweb._classify_address('256.0.0.1');
SELECT seriesweb._classify_address('1.2.3.4.5');
SELECT seriesweb._classify_address('10.0.0.0/8');
SELECT seriesweb._classify_address('[::1]');
SELECT seriesweb._classify_address('fe80::1%eth0');
SELECT seriesweb._classify_address(' 127.0.0.1');
SELECT seriesweb._classify_address(':::1');
SELECT seriesweb._classify_address('2001:db8::g');
SELECT seriesweb._address_allowed('example.com');
-- NULL in, NULL out.
SELECT seriesweb._classify_address(NULL) IS NULL AS class_is_null,
       seriesweb._address_allowed(NULL) IS NULL AS allowed_is_null;

------------------------------------------------------------------------------
-- seriesweb.allowed_networks
------------------------------------------------------------------------------

-- A comma-separated list of networks, IPv4 or IPv6, each with or without a
-- prefix length.  ALTER SYSTEM checks the value at once; each bad entry is
-- named.
ALTER SYSTEM SET seriesweb.allowed_networks = 'intranet';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8, 300.1.1.1';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8, 10.0.0.0/8/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/33';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/-1';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/ 8';
ALTER SYSTEM SET seriesweb.allowed_networks = '::1/129';
ALTER SYSTEM SET seriesweb.allowed_networks = 'fd00::/0128';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.1.2.3/16';
ALTER SYSTEM SET seriesweb.allowed_networks = 'fd00::1/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8,,192.168.0.0/16';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8,';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8 192.168.0.0/16';
ALTER SYSTEM SET seriesweb.allowed_networks = '2001:0db8:0000:0000:0000:0000:0000:0000:0000/64';
ALTER SYSTEM SET seriesweb.allowed_networks = '[fd00::]/8';
ALTER SYSTEM SET seriesweb.allowed_networks = '10.0.0.0/8, 0000:0000:0000:0000:0000:0000:0000:0000:0000:0000:0000/0';
-- Nothing was written: the file still has no value for the setting.
SELECT count(*) AS written FROM pg_file_settings WHERE name = 'seriesweb.allowed_networks';

-- A good list: blanks around entries are fine; an address without prefix
-- length is one host; an IPv4 entry also covers that address's IPv6 forms.
ALTER SYSTEM SET seriesweb.allowed_networks = ' 10.0.0.0/8 ,192.168.1.7,  fd00::/8, 127.0.0.0/31 ';
SELECT pg_reload_conf();
\set ECHO none
SELECT pg_temp.wait_statements(' 10.0.0.0/8 ,192.168.1.7,  fd00::/8, 127.0.0.0/31 ') \gexec
\set ECHO all
SHOW seriesweb.allowed_networks;

SELECT * FROM pg_temp.guard('10.0.0.0', '10.255.255.255', '192.168.1.7', '192.168.1.6', '192.168.1.8',
                            '127.0.0.0', '127.0.0.1', '127.0.0.2', 'fd00::', 'fdff::1', 'fc00::1',
                            '::ffff:10.1.2.3', '64:ff9b::10.1.2.3', '2002:c0a8:107::1', '::ffff:192.168.1.8',
                            '169.254.169.254', '172.16.0.1', 'fe80::1', '8.8.8.8');

-- An IPv6 entry covers IPv6 addresses only: ::ffff:0:0/96 entries match the
-- mapped form, not the IPv4 address itself.  Entries may overlap.
ALTER SYSTEM SET seriesweb.allowed_networks = '::ffff:169.254.0.0/112, 0.0.0.0/0, ::/0';
SELECT pg_reload_conf();
\set ECHO none
SELECT pg_temp.wait_statements('::ffff:169.254.0.0/112, 0.0.0.0/0, ::/0') \gexec
\set ECHO all
SHOW seriesweb.allowed_networks;
SELECT * FROM pg_temp.guard('169.254.169.254', '::ffff:169.254.169.254', '0.0.0.0', '255.255.255.255',
                            '::', 'ff02::1');

ALTER SYSTEM SET seriesweb.allowed_networks = '::ffff:169.254.0.0/112';
SELECT pg_reload_conf();
\set ECHO none
SELECT pg_temp.wait_statements('::ffff:169.254.0.0/112') \gexec
\set ECHO all
SHOW seriesweb.allowed_networks;
SELECT * FROM pg_temp.guard('169.254.169.254', '::ffff:169.254.169.254', '::ffff:169.255.0.0');

-- Back to the default: nothing but public addresses.
ALTER SYSTEM RESET seriesweb.allowed_networks;
SELECT pg_reload_conf();
\set ECHO none
SELECT pg_temp.wait_statements('') \gexec
\set ECHO all
SHOW seriesweb.allowed_networks;
SELECT * FROM pg_temp.guard('10.1.2.3', '127.0.0.1', '::ffff:169.254.169.254', '8.8.8.8');

DROP EXTENSION seriesweb;
