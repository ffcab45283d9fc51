/*-------------------------------------------------------------------------
 *
 * sign.c
 *	  Sign requests the Standard Webhooks way, with PostgreSQL's own HMAC
 *	  and SHA-256 (no other crypto dependency).
 *
 * The key is the block's secret: the part after "whsec_" base64-decoded, or
 * the secret's bytes as they are when it has no such prefix.  The signed
 * content is "<webhook-id>.<webhook-timestamp>.<body>".  The webhook-id is
 * chosen by the caller and stays the same across the retries of one
 * delivery, so receivers can drop duplicates; the timestamp is the
 * attempt's.  The secret never appears in a message: errors describe it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <time.h>

#include "common/base64.h"
#if PG_VERSION_NUM >= 140000
#include "common/hmac.h"
#else
#include "common/sha2.h"
#endif
#include "fmgr.h"
#include "sign.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define SHA256_LEN 32
#define SECRET_PREFIX "whsec_"

/* The HMAC key of a secret; *len set.  NULL if a whsec_ secret is not base64. */
static uint8 *
secret_key(const char *secret, int *len)
{
	const char *b64;
	int			b64len;
	uint8	   *key;

	if (strncmp(secret, SECRET_PREFIX, strlen(SECRET_PREFIX)) != 0)
	{
		*len = strlen(secret);
		return (uint8 *) pstrdup(secret);
	}
	b64 = secret + strlen(SECRET_PREFIX);
	b64len = strlen(b64);
	key = palloc(pg_b64_dec_len(b64len) + 1);
	*len = pg_b64_decode(b64, b64len, (char *) key, pg_b64_dec_len(b64len));
	return *len > 0 ? key : NULL;
}

void
sw_check_secret(const char *secret)
{
	int len;

	if (secret[0] == '\0')
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("webhook secret must not be empty"),
						errhint("Use NULL for an unsigned webhook.")));
	if (secret_key(secret, &len) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook secret starts with \"whsec_\" but the rest is not valid base64"),
				 errhint("Paste the secret exactly as the receiver gave it, or drop the prefix to "
						 "use it as raw bytes.")));
	if (len < 16)
		ereport(
			ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("webhook secret is too short (%d bytes)", len),
			 errhint("Use at least 16 bytes of key; Standard Webhooks secrets have 24 to 64.")));
}

#if PG_VERSION_NUM >= 140000
static void
hmac_sha256(const uint8 *key, int keylen, const char *const *parts, const int *lens, int nparts,
			uint8 *out)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		 ok = ctx != NULL && pg_hmac_init(ctx, key, keylen) == 0;

	for (int i = 0; ok && i < nparts; i++)
		ok = pg_hmac_update(ctx, (const uint8 *) parts[i], lens[i]) == 0;
	ok = ok && pg_hmac_final(ctx, out, SHA256_LEN) == 0;
	pg_hmac_free(ctx);
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
						errmsg("seriesweb: could not compute an HMAC-SHA256 signature")));
}
#else
/* PostgreSQL 13 has SHA-256 but no HMAC: RFC 2104 over pg_sha256. */
static void
hmac_sha256(const uint8 *key, int keylen, const char *const *parts, const int *lens, int nparts,
			uint8 *out)
{
	uint8		  block[PG_SHA256_BLOCK_LENGTH] = {0};
	uint8		  pad[PG_SHA256_BLOCK_LENGTH];
	uint8		  inner[SHA256_LEN];
	pg_sha256_ctx ctx;

	if (keylen > PG_SHA256_BLOCK_LENGTH)
	{
		pg_sha256_init(&ctx);
		pg_sha256_update(&ctx, key, keylen);
		pg_sha256_final(&ctx, block);
	}
	else
		memcpy(block, key, keylen);

	for (int i = 0; i < PG_SHA256_BLOCK_LENGTH; i++)
		pad[i] = block[i] ^ 0x36;
	pg_sha256_init(&ctx);
	pg_sha256_update(&ctx, pad, sizeof(pad));
	for (int i = 0; i < nparts; i++)
		pg_sha256_update(&ctx, (const uint8 *) parts[i], lens[i]);
	pg_sha256_final(&ctx, inner);

	for (int i = 0; i < PG_SHA256_BLOCK_LENGTH; i++)
		pad[i] = block[i] ^ 0x5c;
	pg_sha256_init(&ctx);
	pg_sha256_update(&ctx, pad, sizeof(pad));
	pg_sha256_update(&ctx, inner, sizeof(inner));
	pg_sha256_final(&ctx, out);
}
#endif

char *
sw_signature(const char *secret, const char *msg_id, int64 timestamp, const char *body,
			 int body_len)
{
	char		ts[32];
	const char *parts[5];
	int			lens[5];
	uint8		mac[SHA256_LEN];
	int			keylen;
	uint8	   *key = secret_key(secret, &keylen);
	char	   *out = palloc(3 + pg_b64_enc_len(SHA256_LEN) + 1);
	int			n;

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("webhook secret starts with \"whsec_\" but the rest is not valid base64")));
	snprintf(ts, sizeof(ts), INT64_FORMAT, timestamp);
	parts[0] = msg_id;
	parts[1] = ".";
	parts[2] = ts;
	parts[3] = ".";
	parts[4] = body;
	for (int i = 0; i < 4; i++)
		lens[i] = strlen(parts[i]);
	lens[4] = body_len;
	hmac_sha256(key, keylen, parts, lens, 5, mac);

	memcpy(out, "v1,", 3);
	n = pg_b64_encode((const char *) mac, SHA256_LEN, out + 3, pg_b64_enc_len(SHA256_LEN));
	out[3 + n] = '\0';
	return out;
}

char **
sw_sign_headers(const char *secret, const char *msg_id, const char *body, int body_len,
				char **headers, int *nheaders)
{
	int64  now = (int64) time(NULL);
	char **out = palloc(sizeof(char *) * (*nheaders + 3));

	memcpy(out, headers, sizeof(char *) * *nheaders);
	out[(*nheaders)++] = psprintf("webhook-id: %s", msg_id);
	out[(*nheaders)++] = psprintf("webhook-timestamp: " INT64_FORMAT, now);
	out[(*nheaders)++] =
		psprintf("webhook-signature: %s", sw_signature(secret, msg_id, now, body, body_len));
	return out;
}

PG_FUNCTION_INFO_V1(sw_check_secret_sql);
Datum
sw_check_secret_sql(PG_FUNCTION_ARGS)
{
	sw_check_secret(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}

/* For tests: the signature of a given message, e.g. the public test vector. */
PG_FUNCTION_INFO_V1(sw_signature_sql);
Datum
sw_signature_sql(PG_FUNCTION_ARGS)
{
	char *secret = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char *msg_id = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64 timestamp = PG_GETARG_INT64(2);
	text *body = PG_GETARG_TEXT_PP(3);

	PG_RETURN_TEXT_P(cstring_to_text(
		sw_signature(secret, msg_id, timestamp, VARDATA_ANY(body), VARSIZE_ANY_EXHDR(body))));
}
