/* SPDX-License-Identifier: ISC */
#ifndef LINK_H
#define LINK_H

#include <stddef.h>

struct event_base;
struct link;

/*
 * One MQTT session on the loop (link.c): libmosquitto's socket
 * interface on libevent events, names resolved asynchronously, TLS and
 * mTLS, will, keepalive, clean session, handshake timeout, reconnect
 * with jittered exponential backoff capped by retry_interval.
 */
enum link_status {
	LINK_DISCONNECT,	/* off, or waiting to retry after a loss */
	LINK_CONNECTING,
	LINK_CONNECT_FAILURE,	/* the last attempt failed; retrying */
	LINK_CONNECTED
};

struct link_cfg {
	char		*host;
	int		 port;
	char		*client_id;
	char		*username;	/* NULL: none */
	char		*password;	/* NULL: none */
	int		 keepalive;	/* seconds */
	int		 clean_session;
	int		 protocol;	/* 3 (MQTT 3.1) or 4 (3.1.1) */
	int		 tls;
	char		*tls_version;	/* "1.0" .. "1.3" */
	char		*ca_file;	/* NULL: the system's CAs */
	char		*cert_file;	/* client certificate (mTLS) */
	char		*key_file;
	int		 insecure;	/* skip verification */
	int		 will;
	char		*will_topic;
	char		*will_payload;
	int		 will_qos;
	int		 will_retain;
	int		 handshake_timeout;	/* seconds */
	int		 retry_interval;	/* seconds, backoff ceiling */
	int		 max_inflight;		/* unacknowledged publishes */
};

struct link_ops {
	void	(*connected)(struct link *, void *);
	void	(*disconnected)(struct link *, void *);
	/* A publish left the window: acknowledged (QoS 1, 2) or written. */
	void	(*acked)(struct link *, int, void *);
	/* The window has room again. */
	void	(*writable)(struct link *, void *);
	void	(*message)(struct link *, const char *, const void *, size_t,
		    void *);
};

void		 link_cfg_copy(struct link_cfg *, const struct link_cfg *);
void		 link_cfg_clear(struct link_cfg *);

struct link	*link_new(struct event_base *, const char *,
		    const struct link_cfg *, const struct link_ops *, void *);
void		 link_reconfigure(struct link *, const struct link_cfg *);
void		 link_enable(struct link *, int);
void		 link_free(struct link *);
enum link_status link_get_status(const struct link *);
const char	*link_status_name(enum link_status);
const char	*link_last_error(const struct link *);
const char	*link_name(const struct link *);
int		 link_room(const struct link *);
int		 link_publish(struct link *, const char *, const void *, size_t,
		    int, int, int *);
int		 link_subscribe(struct link *, const char *, int);

/* Name resolution on the loop (resolv in link.c). */
void		 link_dns_init(struct event_base *, const char *);
void		 link_dns_free(void);

#endif
