/* SPDX-License-Identifier: ISC */
/*
 * /users: the accounts that may log in (core API shapes).  Every account
 * is an administrator; roles and permissions are reported as such.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "auth.h"
#include "json.h"
#include "xmalloc.h"

static void	api_users_list(struct api_req *, struct api_resp *);
static void	api_users_add(struct api_req *, struct api_resp *);
static void	api_users_get(struct api_req *, struct api_resp *);
static void	api_users_put(struct api_req *, struct api_resp *);
static void	api_users_delete(struct api_req *, struct api_resp *);
static void	api_users_password(struct api_req *, struct api_resp *);
static void	api_users_me(struct api_req *, struct api_resp *);
static void	api_users_me_put(struct api_req *, struct api_resp *);
static void	api_users_me_password(struct api_req *, struct api_resp *);

const struct api_route api_users_routes[] = {
	{ API_GET, "/users", 0, api_users_list },
	{ API_POST, "/users", API_BODY | API_NOREMOTE, api_users_add },
	{ API_GET, "/users/me", API_NOREMOTE, api_users_me },
	{ API_PUT, "/users/me", API_BODY | API_NOREMOTE, api_users_me_put },
	{ API_PUT, "/users/me/password", API_BODY | API_NOREMOTE,
	    api_users_me_password },
	{ API_GET, "/users/{id}", 0, api_users_get },
	{ API_PUT, "/users/{id}", API_BODY | API_NOREMOTE, api_users_put },
	{ API_DELETE, "/users/{id}", API_NOREMOTE, api_users_delete },
	{ API_PUT, "/users/{id}/password", API_BODY | API_NOREMOTE,
	    api_users_password },
	{ 0, NULL, 0, NULL }
};

static const struct json_field api_users_role_item[] = {
	{ "", JF_ANY, 0, 0, 0, NULL, NULL, NULL, NULL },
};

static const struct json_field api_users_add_schema[] = {
	{ "name", JF_STRING, JF_REQUIRED, 1, AUTH_NAME_MAX, NULL, NULL, NULL,
	    NULL },
	{ "password", JF_STRING, JF_REQUIRED, AUTH_PASSWORD_MIN,
	    AUTH_PASSWORD_MAX, NULL, NULL, NULL, NULL },
	{ "isActive", JF_BOOL, 0, 0, 0, NULL, "true", NULL, NULL },
	{ "email", JF_STRING, JF_NULLABLE, 0, 254, NULL, NULL, NULL, NULL },
	{ "expiredAfter", JF_STRING, JF_NULLABLE, 0, 64, NULL, NULL, NULL,
	    NULL },
	{ "roles", JF_ARRAY, 0, 0, 16, NULL, NULL, api_users_role_item, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field api_users_put_schema[] = {
	{ "isActive", JF_BOOL, 0, 0, 0, NULL, NULL, NULL, NULL },
	{ "email", JF_STRING, JF_NULLABLE, 0, 254, NULL, NULL, NULL, NULL },
	{ "expiredAfter", JF_STRING, JF_NULLABLE, 0, 64, NULL, NULL, NULL,
	    NULL },
	{ "roles", JF_ARRAY, 0, 0, 16, NULL, NULL, api_users_role_item, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

static const struct json_field api_users_pw_schema[] = {
	{ "newPassword", JF_STRING, JF_REQUIRED, AUTH_PASSWORD_MIN,
	    AUTH_PASSWORD_MAX, NULL, NULL, NULL, NULL },
	{ "oldPassword", JF_STRING, 0, 0, AUTH_PASSWORD_MAX, NULL, NULL, NULL,
	    NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* Validate the body or answer 400; 0 if valid. */
static int
api_users_valid(struct api_req *req, struct api_resp *resp,
    const struct json_field *schema)
{
	char	*cause;

	if (json_validate(req->json, schema, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return (-1);
	}
	return (0);
}

/* GET /users -> {"count":N,"data":[...]} */
static void
api_users_list(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	struct json	*body, *list;

	list = auth_user_list();
	body = json_new_object();
	json_set(body, "count", json_new_uint(json_array_size(list)));
	json_set(body, "data", list);
	api_bare(resp, 200, body);
}

/* POST /users */
static void
api_users_add(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	char		*cause;

	if (api_users_valid(req, resp, api_users_add_schema) != 0)
		return;
	if (auth_user_add(json_get_string(req->json, "name"),
	    json_get_string(req->json, "password"),
	    json_bool(json_get(req->json, "isActive")),
	    json_get_string(req->json, "email"), &user, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return;
	}
	api_data(resp, user);
}

/* Look up {id}; answers 400/404 and returns NULL if it cannot. */
static struct json *
api_users_find(struct api_req *req, struct api_resp *resp, uint64_t *id)
{
	struct json	*user;

	if (api_param_id(req, resp, "id", id) != 0)
		return (NULL);
	if ((user = auth_user_get(*id)) == NULL)
		api_error(req, resp, 404, "user %" PRIu64 " not found", *id);
	return (user);
}

/* GET /users/{id} */
static void
api_users_get(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;

	if ((user = api_users_find(req, resp, &id)) != NULL)
		api_data(resp, user);
}

/* Validate and apply an account update; answers. */
static void
api_users_update(struct api_req *req, struct api_resp *resp, uint64_t id)
{
	struct json	*user;
	char		*cause;

	if (api_users_valid(req, resp, api_users_put_schema) != 0)
		return;
	if (auth_user_update(id, req->json, &user, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return;
	}
	api_data(resp, user);
}

/* PUT /users/{id} {email, isActive, expiredAfter} */
static void
api_users_put(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;

	if ((user = api_users_find(req, resp, &id)) == NULL)
		return;
	json_free(user);
	api_users_update(req, resp, id);
}

/* DELETE /users/{id} -> 204 */
static void
api_users_delete(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;
	char		*cause;

	if ((user = api_users_find(req, resp, &id)) == NULL)
		return;
	json_free(user);
	if (auth_user_delete(id, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return;
	}
	api_bare(resp, 204, NULL);
}

/* Set a password after validation; answers. */
static void
api_users_setpw(struct api_req *req, struct api_resp *resp, uint64_t id)
{
	char	*cause;

	if (auth_user_password(id, json_get_string(req->json, "newPassword"),
	    &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		return;
	}
	api_data(resp, auth_user_get(id));
}

/* PUT /users/{id}/password {newPassword} (administrators need no old one) */
static void
api_users_password(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;

	if ((user = api_users_find(req, resp, &id)) == NULL)
		return;
	json_free(user);
	if (api_users_valid(req, resp, api_users_pw_schema) != 0)
		return;
	api_users_setpw(req, resp, id);
}

/* The account behind the request's token; answers 400 for the API token. */
static struct json *
api_users_self(struct api_req *req, struct api_resp *resp)
{
	struct json	*user = NULL;

	if (req->user != NULL && strcmp(req->user, "api-token") != 0)
		user = auth_user_by_name(req->user);
	if (user == NULL)
		api_error(req, resp, 400, "Authorization: the API token "
		    "belongs to no account; log in with /auth");
	return (user);
}

/* GET /users/me */
static void
api_users_me(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;

	if ((user = api_users_self(req, resp)) != NULL)
		api_data(resp, user);
}

/* PUT /users/me {email, isActive, expiredAfter} */
static void
api_users_me_put(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;

	if ((user = api_users_self(req, resp)) == NULL)
		return;
	id = json_uint(json_get(user, "id"));
	json_free(user);
	api_users_update(req, resp, id);
}

/* PUT /users/me/password {oldPassword, newPassword} */
static void
api_users_me_password(struct api_req *req, struct api_resp *resp)
{
	struct json	*user;
	uint64_t	 id;

	if ((user = api_users_self(req, resp)) == NULL)
		return;
	id = json_uint(json_get(user, "id"));
	json_free(user);
	if (api_users_valid(req, resp, api_users_pw_schema) != 0)
		return;
	if (json_get_string(req->json, "oldPassword") == NULL ||
	    !auth_user_check(id, json_get_string(req->json, "oldPassword"))) {
		api_error(req, resp, 400, "oldPassword: Invalid current "
		    "password.");
		return;
	}
	api_users_setpw(req, resp, id);
}
