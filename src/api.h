/* SPDX-License-Identifier: ISC */
#ifndef API_H
#define API_H

#include <stddef.h>
#include <stdint.h>

struct json;
struct multipart;
struct store;

#define API_GET		0x01
#define API_POST	0x02
#define API_PUT		0x04
#define API_DELETE	0x08
#define API_PATCH	0x10
#define API_OTHER	0x20	/* HEAD, OPTIONS, ...: never routed */

/* Route flags. */
#define API_PUBLIC	0x001	/* no token needed */
#define API_CLOUDERR	0x002	/* errors as {"error":"..."} (cloud apps) */
#define API_BODY	0x004	/* a JSON body is required */
#define API_MULTIPART	0x008	/* multipart/form-data is accepted */
#define API_NOREMOTE	0x010	/* not callable over cloud channels */
#define API_RAWBODY	0x020	/* handler reads the body itself */

#define API_MAX_PARAMS	4

struct api_kv {
	const char	*key;
	const char	*value;
};

/* Where a request came from; remote origins are the clouds. */
enum api_origin {
	API_ORIGIN_HTTP,
	API_ORIGIN_HTTPS,
	API_ORIGIN_UNIX,
	API_ORIGIN_REMOTE
};

/*
 * A request, independent of its transport.  Everything is borrowed from
 * the caller for the duration of api_dispatch() except what the
 * dispatcher fills in (json, mp, params), which it frees.
 */
struct api_req {
	int			 method;
	const char		*path;		/* below /api/v1, decoded */
	const struct api_kv	*query;
	size_t			 nquery;
	const struct api_kv	*headers;
	size_t			 nheaders;
	const char		*content_type;
	const void		*body;
	size_t			 bodylen;
	enum api_origin		 origin;
	const char		*peer;		/* for logs */

	/* Filled by api_dispatch(). */
	struct json		*json;		/* parsed JSON body */
	struct multipart	*mp;		/* parsed multipart body */
	char			*params[API_MAX_PARAMS];
	const char		*pnames[API_MAX_PARAMS];
	size_t			 nparams;
	const struct api_route	*route;
	char			*user;		/* authenticated name */
};

struct api_stream;
typedef void (*api_stream_cb)(struct api_stream *, void *);

/*
 * A long-lived answer (HTTP: chunked), set up by a handler with
 * api_stream().  The transport calls start once the head is sent; the
 * producer writes with api_stream_write() and finishes with
 * api_stream_end().  If the client goes away, is too slow, or the daemon
 * stops, the transport calls closed instead (exactly once, from the loop,
 * never from inside api_stream_write()); the stream is invalid after
 * either.  A stream that cannot be started gets closed with NULL.
 */
struct api_stream_ops {
	int	(*write)(struct api_stream *, const void *, size_t);
	void	(*end)(struct api_stream *);
};

struct api_stream {
	const struct api_stream_ops	*ops;
	void				*transport;
	api_stream_cb			 start;
	api_stream_cb			 closed;
	void				*arg;
};

/*
 * A response: a status and either a JSON body or raw bytes with a
 * content type, or a stream.  The transport frees it with
 * api_resp_clear().
 */
struct api_resp {
	int		 status;
	struct json	*body;
	char		*raw;
	size_t		 rawlen;
	const char	*content_type;
	struct api_kv	 headers[4];
	char		*hvalues[4];
	size_t		 nheaders;
	unsigned int	 delay_ms;	/* answer no earlier than this */
	api_stream_cb	 stream_start;
	api_stream_cb	 stream_closed;
	void		*stream_arg;
	const char	*stream_type;
};

typedef void (*api_handler)(struct api_req *, struct api_resp *);

struct api_route {
	int		 method;
	const char	*pattern;	/* "/mqtt/{id}/messages/{group_id}" */
	int		 flags;
	api_handler	 handler;
};

void		 api_init(struct store *);
void		 api_free(void);
struct store	*api_store(void);
void		 api_dispatch(struct api_req *, struct api_resp *);
void		 api_req_clear(struct api_req *);
void		 api_resp_clear(struct api_resp *);
const char	*api_method_name(int);
int		 api_method_parse(const char *);
const struct api_route *api_routes(size_t *);

/* For handlers. */
const char	*api_param(const struct api_req *, const char *);
int		 api_param_id(struct api_req *, struct api_resp *,
		    const char *, uint64_t *);
const char	*api_query(const struct api_req *, const char *);
int		 api_query_parse(const char *, struct api_kv **, size_t *,
		    size_t, char **);
void		 api_query_free(struct api_kv *, size_t);
const char	*api_header(const struct api_req *, const char *);
void		 api_data(struct api_resp *, struct json *);
void		 api_bare(struct api_resp *, int, struct json *);
void		 api_text(struct api_resp *, int, const char *, char *,
		    size_t);
void		 api_error(struct api_req *, struct api_resp *, int,
		    const char *, ...)
		    __attribute__((__format__(__printf__, 4, 5)));
void		 api_add_header(struct api_resp *, const char *,
		    const char *);
void		 api_stream(struct api_resp *, const char *, api_stream_cb,
		    api_stream_cb, void *);
int		 api_stream_write(struct api_stream *, const void *, size_t);
void		 api_stream_end(struct api_stream *);

/* Route tables of the resources. */
extern const struct api_route api_auth_routes[];
extern const struct api_route api_users_routes[];
extern const struct api_route api_system_routes[];
extern const struct api_route api_tags_routes[];
extern const struct api_route api_mqtt_routes[];
extern const struct api_route api_device_routes[];

void		 api_tags_set_max_records(size_t);

#endif
