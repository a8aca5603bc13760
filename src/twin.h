/* SPDX-License-Identifier: ISC */
#ifndef TWIN_H
#define TWIN_H

struct api_req;
struct api_resp;
struct json;
struct twin;

/*
 * The reported/desired property engine shared by the Azure device twin,
 * the AWS shadow and Sparkplug node properties (twin.c).  A mapping
 * {origin: {resource: [{source, reportedPath, desiredPath}]}} names
 * REST resources of this daemon; source and the paths are dotted JSON
 * paths ("" = the whole document).
 */
#define TWIN_AZURE_ARRAYS	0x1	/* arrays as {"0":..,"arraySize":N} */

/*
 * How a twin calls its resources.  The twin fills req (method, path,
 * origin API_ORIGIN_REMOTE, json) and a zeroed resp; the hook may adjust
 * req (an allow-list, a log line, another origin) and must leave resp
 * answered, normally by calling api_dispatch().  The twin clears both.
 * Without a hook the twin calls api_dispatch() itself.
 */
typedef void (*twin_dispatch_cb)(struct api_req *, struct api_resp *,
		    void *);

int		 twin_validate(struct json *, char **);
const char	*twin_resource_path(const char *, const char *);
struct twin	*twin_new(const struct json *, int, char **);
void		 twin_free(struct twin *);
void		 twin_set_dispatch(struct twin *, twin_dispatch_cb, void *);
struct json	*twin_report(struct twin *, int);
struct json	*twin_desired(struct twin *, const struct json *);
void		 twin_forget(struct twin *, const struct json *);

struct json	*twin_encode_arrays(const struct json *);
struct json	*twin_decode_arrays(const struct json *, char **);
struct json	*twin_diff(const struct json *, const struct json *);
int		 twin_path_set(struct json *, const char *, struct json *,
		    char **);

#endif
