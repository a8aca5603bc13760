/* SPDX-License-Identifier: ISC */
/*
 * /mqtt: generic MQTT clients, their certificates and message groups.
 * Cloud resources answer errors as {"error":"..."}; message-group lists
 * are bare arrays, as in the vendor API.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "cloud.h"
#include "cloud_mqtt.h"
#include "json.h"
#include "xmalloc.h"

static void	api_mqtt_list(struct api_req *, struct api_resp *);
static void	api_mqtt_add(struct api_req *, struct api_resp *);
static void	api_mqtt_put(struct api_req *, struct api_resp *);
static void	api_mqtt_del(struct api_req *, struct api_resp *);
static void	api_mqtt_certs(struct api_req *, struct api_resp *);
static void	api_mqtt_groups(struct api_req *, struct api_resp *);
static void	api_mqtt_group_add(struct api_req *, struct api_resp *);
static void	api_mqtt_group_get(struct api_req *, struct api_resp *);
static void	api_mqtt_group_put(struct api_req *, struct api_resp *);
static void	api_mqtt_group_del(struct api_req *, struct api_resp *);
static void	api_mqtt_test(struct api_req *, struct api_resp *);
static void	api_mqtt_saf_get(struct api_req *, struct api_resp *);
static void	api_mqtt_saf_put(struct api_req *, struct api_resp *);

#define C	API_CLOUDERR
const struct api_route api_mqtt_routes[] = {
	{ API_GET, "/mqtt", C, api_mqtt_list },
	{ API_POST, "/mqtt", C | API_BODY | API_MULTIPART, api_mqtt_add },
	{ API_PUT, "/mqtt/{id}", C | API_BODY | API_MULTIPART, api_mqtt_put },
	{ API_DELETE, "/mqtt/{id}", C, api_mqtt_del },
	{ API_DELETE, "/mqtt/{id}/certificates", C, api_mqtt_certs },
	{ API_GET, "/mqtt/{id}/store-and-forward", C, api_mqtt_saf_get },
	{ API_PUT, "/mqtt/{id}/store-and-forward", C | API_BODY,
	    api_mqtt_saf_put },
	{ API_GET, "/mqtt/{id}/messages", C, api_mqtt_groups },
	{ API_POST, "/mqtt/{id}/messages", C | API_BODY, api_mqtt_group_add },
	{ API_PUT, "/mqtt/{id}/messages/test", C | API_BODY, api_mqtt_test },
	{ API_GET, "/mqtt/{id}/messages/{group_id}", C, api_mqtt_group_get },
	{ API_PUT, "/mqtt/{id}/messages/{group_id}", C | API_BODY,
	    api_mqtt_group_put },
	{ API_DELETE, "/mqtt/{id}/messages/{group_id}", C,
	    api_mqtt_group_del },
	{ 0, NULL, 0, NULL }
};
#undef C

/* Answer 400 (or status) with a cause and free it. */
static void
api_mqtt_fail(struct api_req *req, struct api_resp *resp, int status,
    char *cause)
{
	api_error(req, resp, status, "%s", cause);
	free(cause);
}

/* GET /mqtt -> {"data":[clients]} */
static void
api_mqtt_list(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	api_data(resp, cloud_mqtt_list());
}

/* POST /mqtt (JSON or multipart) -> {"data":[all clients]} */
static void
api_mqtt_add(struct api_req *req, struct api_resp *resp)
{
	struct json	*out;
	char		*cause;

	if (cloud_mqtt_add(req->json, req->mp, &out, &cause) != 0) {
		api_mqtt_fail(req, resp, 400, cause);
		return;
	}
	api_data(resp, out);
}

/* PUT /mqtt/{id} -> {"data":client} */
static void
api_mqtt_put(struct api_req *req, struct api_resp *resp)
{
	struct json	*out;
	uint64_t	 id;
	char		*cause;
	int		 status;

	if (api_param_id(req, resp, "id", &id) != 0)
		return;
	if (cloud_mqtt_update(id, req->json, req->mp, &out, &status,
	    &cause) != 0) {
		api_mqtt_fail(req, resp, status, cause);
		return;
	}
	api_data(resp, out);
}

/* DELETE /mqtt/{id} -> {"data":[remaining clients]} */
static void
api_mqtt_del(struct api_req *req, struct api_resp *resp)
{
	uint64_t	 id;
	char		*cause;

	if (api_param_id(req, resp, "id", &id) != 0)
		return;
	if (cloud_mqtt_delete(id, &cause) != 0) {
		api_mqtt_fail(req, resp, 404, cause);
		return;
	}
	api_data(resp, cloud_mqtt_list());
}

/* DELETE /mqtt/{id}/certificates -> {"data":client} */
static void
api_mqtt_certs(struct api_req *req, struct api_resp *resp)
{
	struct json	*out;
	uint64_t	 id;
	char		*cause;
	int		 status;

	if (api_param_id(req, resp, "id", &id) != 0)
		return;
	if (cloud_mqtt_clear_certs(id, &out, &status, &cause) != 0) {
		api_mqtt_fail(req, resp, status, cause);
		return;
	}
	api_data(resp, out);
}

/* The groups of the client in the path; NULL after answering. */
static struct cloud_groups *
api_mqtt_client_groups(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;
	uint64_t		 id;

	if (api_param_id(req, resp, "id", &id) != 0)
		return (NULL);
	if ((cg = cloud_mqtt_groups(id)) == NULL)
		api_error(req, resp, 404, "MQTT client %" PRIu64 " not found",
		    id);
	return (cg);
}

/* GET /mqtt/{id}/messages -> [groups] */
static void
api_mqtt_groups(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;

	if ((cg = api_mqtt_client_groups(req, resp)) != NULL)
		api_bare(resp, 200, cloud_groups_list(cg));
}

/* POST /mqtt/{id}/messages -> [groups] */
static void
api_mqtt_group_add(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;
	struct json		*out;
	char			*cause;

	if ((cg = api_mqtt_client_groups(req, resp)) == NULL)
		return;
	if (cloud_groups_add(cg, req->json, &out, &cause) != 0) {
		api_mqtt_fail(req, resp, 400, cause);
		return;
	}
	json_free(out);
	api_bare(resp, 200, cloud_groups_list(cg));
}

/* GET /mqtt/{id}/messages/{group_id} -> {"data":group} */
static void
api_mqtt_group_get(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;
	struct json		*g;
	uint64_t		 gid;

	if ((cg = api_mqtt_client_groups(req, resp)) == NULL ||
	    api_param_id(req, resp, "group_id", &gid) != 0)
		return;
	if ((g = cloud_groups_get(cg, gid)) == NULL) {
		api_error(req, resp, 404, "message group %" PRIu64 " not found",
		    gid);
		return;
	}
	api_data(resp, g);
}

/* PUT /mqtt/{id}/messages/{group_id} -> {"data":group} */
static void
api_mqtt_group_put(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;
	struct json		*out;
	uint64_t		 gid;
	char			*cause;
	int			 status;

	if ((cg = api_mqtt_client_groups(req, resp)) == NULL ||
	    api_param_id(req, resp, "group_id", &gid) != 0)
		return;
	if (cloud_groups_update(cg, gid, req->json, &out, &status,
	    &cause) != 0) {
		api_mqtt_fail(req, resp, status, cause);
		return;
	}
	api_data(resp, out);
}

/* DELETE /mqtt/{id}/messages/{group_id} -> [remaining groups] */
static void
api_mqtt_group_del(struct api_req *req, struct api_resp *resp)
{
	struct cloud_groups	*cg;
	uint64_t		 gid;
	char			*cause;

	if ((cg = api_mqtt_client_groups(req, resp)) == NULL ||
	    api_param_id(req, resp, "group_id", &gid) != 0)
		return;
	if (cloud_groups_delete(cg, gid, &cause) != 0) {
		api_mqtt_fail(req, resp, 404, cause);
		return;
	}
	api_bare(resp, 200, cloud_groups_list(cg));
}

/* PUT /mqtt/{id}/messages/test {format, tags} -> {"data":merged} */
static void
api_mqtt_test(struct api_req *req, struct api_resp *resp)
{
	struct json	*out;
	char		*cause;
	int		 status;

	if (api_mqtt_client_groups(req, resp) == NULL)
		return;
	if ((out = cloud_format_test(req->json, &status, &cause)) == NULL) {
		api_mqtt_fail(req, resp, status, cause);
		return;
	}
	api_data(resp, out);
}

/* GET /mqtt/{id}/store-and-forward -> {"data":settings + backlog} */
static void
api_mqtt_saf_get(struct api_req *req, struct api_resp *resp)
{
	struct json	*v;
	uint64_t	 id;

	if (api_param_id(req, resp, "id", &id) != 0)
		return;
	if ((v = cloud_mqtt_saf_get(id)) == NULL) {
		api_error(req, resp, 404, "MQTT client %" PRIu64 " not found",
		    id);
		return;
	}
	api_data(resp, v);
}

/* PUT /mqtt/{id}/store-and-forward -> {"data":settings + backlog} */
static void
api_mqtt_saf_put(struct api_req *req, struct api_resp *resp)
{
	struct json	*out;
	uint64_t	 id;
	char		*cause;
	int		 status;

	if (api_param_id(req, resp, "id", &id) != 0)
		return;
	if (cloud_mqtt_saf_put(id, req->json, &out, &status, &cause) != 0) {
		api_mqtt_fail(req, resp, status, cause);
		return;
	}
	api_data(resp, out);
}
