/* SPDX-License-Identifier: ISC */
/*
 * /auth: log in (POST, the one call besides /health that needs no token)
 * and check a token (GET).
 */

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "xmalloc.h"

static void	api_auth_login(struct api_req *, struct api_resp *);
static void	api_auth_check(struct api_req *, struct api_resp *);

const struct api_route api_auth_routes[] = {
	{ API_POST, "/auth", API_PUBLIC | API_BODY | API_NOREMOTE,
	    api_auth_login },
	{ API_GET, "/auth", API_NOREMOTE, api_auth_check },
	{ 0, NULL, 0, NULL }
};

static const struct json_field api_auth_login_schema[] = {
	{ "name", JF_STRING, JF_REQUIRED, 1, AUTH_NAME_MAX, NULL, NULL, NULL,
	    NULL },
	{ "password", JF_STRING, JF_REQUIRED, 1, AUTH_PASSWORD_MAX, NULL, NULL,
	    NULL, NULL },
	{ "acceptEULA", JF_BOOL, 0, 0, 0, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* POST /auth {name, password} -> {"data":{"token":..., "user":{...}}} */
static void
api_auth_login(struct api_req *req, struct api_resp *resp)
{
	struct json	*data, *user = NULL;
	char		*cause = NULL, *token = NULL, retry[32];
	int		 rc;

	if (json_validate(req->json, api_auth_login_schema, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return;
	}
	rc = auth_login(json_get_string(req->json, "name"),
	    json_get_string(req->json, "password"), req->peer, &token, &user,
	    &resp->delay_ms, &cause);
	switch (rc) {
	case AUTH_OK:
		data = json_new_object();
		json_set(data, "token", json_new_string(token));
		json_set(data, "user", user);
		api_data(resp, data);
		break;
	case AUTH_THROTTLED:
		/* Answer at once, saying when to come back (whole seconds). */
		snprintf(retry, sizeof retry, "%u",
		    (resp->delay_ms + 999) / 1000);
		resp->delay_ms = 0;
		api_add_header(resp, "Retry-After", retry);
		api_error(req, resp, 429, "%s", cause);
		break;
	case AUTH_INACTIVE:
		api_error(req, resp, 403, "%s", cause);
		break;
	default:
		api_error(req, resp, 401, "%s", cause);
		break;
	}
	free(token);
	free(cause);
}

/* GET /auth: the dispatcher already checked the token. */
static void
api_auth_check(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	api_data(resp, json_new_string("ok"));
}
