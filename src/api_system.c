/* SPDX-License-Identifier: ISC */
/*
 * Daemon-wide resources: /health (no token needed) and /metrics
 * (Prometheus text).
 */

#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "json.h"
#include "metrics.h"
#include "util.h"
#include "uplinkd.h"
#include "xmalloc.h"

static void	api_system_health(struct api_req *, struct api_resp *);
static void	api_system_metrics(struct api_req *, struct api_resp *);

const struct api_route api_system_routes[] = {
	{ API_GET, "/health", API_PUBLIC, api_system_health },
	{ API_GET, "/metrics", 0, api_system_metrics },
	{ 0, NULL, 0, NULL }
};

/* GET /health -> {"data":{"status":"ok","version":...,"uptimeSec":...}} */
static void
api_system_health(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	struct json	*data;

	data = json_new_object();
	json_set(data, "status", json_new_string("ok"));
	json_set(data, "version", json_new_string(PACKAGE_VERSION));
	json_set(data, "uptimeSec", json_new_uint(uplinkd_uptime()));
	api_data(resp, data);
}

/* GET /metrics -> text/plain; version=0.0.4 */
static void
api_system_metrics(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	char	*text;
	size_t	 len;

	text = metrics_render(&len);
	api_text(resp, 200, "text/plain; version=0.0.4; charset=utf-8", text,
	    len);
}
