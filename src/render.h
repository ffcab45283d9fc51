/*-------------------------------------------------------------------------
 *
 * render.h
 *	  Webhook templates: validate and compile a webhook block's method, URL,
 *	  headers and body once; render them into a concrete request for one
 *	  user/company/event context at enqueue time (and for preview/test).
 *
 *-------------------------------------------------------------------------
 */
#ifndef SERIESWEB_RENDER_H
#define SERIESWEB_RENDER_H

#include "attrs.h"

typedef struct SwWebhookTemplate SwWebhookTemplate;

/* A rendered request, ready to store in seriesweb.deliveries and send. */
typedef struct SwRenderedRequest
{
	const char *method; /* "POST" or "PUT" */
	char	   *url;
	int			nheaders;
	char	  **headers; /* "Name: value" lines, in block order */
	char	   *body;	 /* NUL-terminated */
	int			body_len;
} SwRenderedRequest;

/*
 * Validate and compile a webhook definition.  Every bad definition is an
 * ereport(ERROR) with SQLSTATE, a message naming the offending value and a
 * hint.  body_json is the JSON text of the body, or NULL for the default
 * payload.  The result lives in CurrentMemoryContext.
 */
extern SwWebhookTemplate *sw_webhook_compile(const char *method, const char *url, Jsonb *headers,
											 const char *body_json);

/*
 * Render for one context.  Returns NULL and fills *out (allocated in
 * CurrentMemoryContext) on success; returns a palloc'd error message when the
 * data makes the request impossible to send (a CR or LF in a rendered header
 * value, ...).  Never ereports on data: the caller records the error on the
 * delivery instead of failing the application's INSERT.
 */
extern char *sw_webhook_render(const SwWebhookTemplate *tmpl, const SwContext *ctx,
							   int64 delivery_id, SwRenderedRequest *out);

#endif /* SERIESWEB_RENDER_H */
