/* SPDX-License-Identifier: ISC */
/*
 * Counters for /metrics, rendered in the Prometheus text format.  The
 * daemon's own figures live here (uptime, event-loop lag, HTTP requests
 * by route, method and status); other modules register a callback that
 * prints theirs.
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "util.h"
#include "xmalloc.h"

#define METRICS_MAX_CB	32
#define METRICS_HTTP_BUCKETS	512

struct metrics_http_count {
	const char	*route;		/* static pattern, or "unmatched" */
	int		 method;
	int		 status;
	uint64_t	 n;
};

struct metrics {
	uint64_t			 start_ms;
	uint64_t			 lag_last_us;
	uint64_t			 lag_max_us;
	uint64_t			 lag_sum_us;
	uint64_t			 lag_samples;
	struct metrics_http_count	 http[METRICS_HTTP_BUCKETS];
	size_t				 nhttp;
	uint64_t			 http_other;
	metrics_cb			 cbs[METRICS_MAX_CB];
	size_t				 ncbs;
};

static struct metrics	*metrics;

/* Start counting. */
void
metrics_init(void)
{
	if (metrics != NULL)
		return;
	metrics = xcalloc(1, sizeof *metrics);
	metrics->start_ms = util_now_ms();
}

/* Stop counting. */
void
metrics_free(void)
{
	free(metrics);
	metrics = NULL;
}

/* Add a module's printer; it writes complete metric families. */
void
metrics_register(metrics_cb cb)
{
	metrics_init();
	if (metrics->ncbs == METRICS_MAX_CB)
		fatalx("metrics: too many callbacks");
	metrics->cbs[metrics->ncbs++] = cb;
}

/*
 * Count one answered request; route must be a string that lives for the
 * whole run (a route table pattern).
 */
void
metrics_http(const char *route, int method, int status)
{
	struct metrics_http_count	*c;
	size_t				 i;

	if (metrics == NULL)
		return;
	for (i = 0; i < metrics->nhttp; i++) {
		c = &metrics->http[i];
		if (c->route == route && c->method == method &&
		    c->status == status) {
			c->n++;
			return;
		}
	}
	if (metrics->nhttp == METRICS_HTTP_BUCKETS) {
		metrics->http_other++;
		return;
	}
	c = &metrics->http[metrics->nhttp++];
	c->route = route;
	c->method = method;
	c->status = status;
	c->n = 1;
}

/* One sample of event-loop lag, in microseconds. */
void
metrics_loop_lag(uint64_t us)
{
	if (metrics == NULL)
		return;
	metrics->lag_last_us = us;
	if (us > metrics->lag_max_us)
		metrics->lag_max_us = us;
	metrics->lag_sum_us += us;
	metrics->lag_samples++;
}

/* The whole exposition; caller frees. */
char *
metrics_render(size_t *lenp)
{
	char				*buf = NULL;
	size_t				 len = 0, i;
	FILE				*f;
	struct metrics_http_count	*c;

	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	fprintf(f, "# HELP uplinkd_uptime_seconds Seconds since the daemon "
	    "started.\n# TYPE uplinkd_uptime_seconds gauge\n"
	    "uplinkd_uptime_seconds %.3f\n",
	    (util_now_ms() - metrics->start_ms) / 1000.0);
	fprintf(f, "# HELP uplinkd_event_loop_lag_seconds How late the "
	    "last periodic loop check ran.\n"
	    "# TYPE uplinkd_event_loop_lag_seconds gauge\n"
	    "uplinkd_event_loop_lag_seconds %.6f\n",
	    metrics->lag_last_us / 1e6);
	fprintf(f, "# HELP uplinkd_event_loop_lag_max_seconds Largest "
	    "event-loop lag seen since start.\n"
	    "# TYPE uplinkd_event_loop_lag_max_seconds gauge\n"
	    "uplinkd_event_loop_lag_max_seconds %.6f\n",
	    metrics->lag_max_us / 1e6);
	fprintf(f, "# HELP uplinkd_event_loop_lag_checks_total Event-loop "
	    "lag samples taken.\n"
	    "# TYPE uplinkd_event_loop_lag_checks_total counter\n"
	    "uplinkd_event_loop_lag_checks_total %" PRIu64 "\n"
	    "# HELP uplinkd_event_loop_lag_seconds_total Sum of event-loop "
	    "lag samples.\n"
	    "# TYPE uplinkd_event_loop_lag_seconds_total counter\n"
	    "uplinkd_event_loop_lag_seconds_total %.6f\n",
	    metrics->lag_samples, metrics->lag_sum_us / 1e6);
	fprintf(f, "# HELP uplinkd_http_requests_total REST requests "
	    "answered, by route, method and status.\n"
	    "# TYPE uplinkd_http_requests_total counter\n");
	for (i = 0; i < metrics->nhttp; i++) {
		c = &metrics->http[i];
		fprintf(f, "uplinkd_http_requests_total{route=\"%s\","
		    "method=\"%s\",status=\"%d\"} %" PRIu64 "\n", c->route,
		    api_method_name(c->method), c->status, c->n);
	}
	if (metrics->http_other != 0)
		fprintf(f, "uplinkd_http_requests_total{route=\"other\","
		    "method=\"other\",status=\"0\"} %" PRIu64 "\n",
		    metrics->http_other);
	for (i = 0; i < metrics->ncbs; i++)
		metrics->cbs[i](f);
	if (fclose(f) != 0)
		fatal("metrics: fclose");
	*lenp = len;
	return (buf);
}
