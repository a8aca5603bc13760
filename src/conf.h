/* SPDX-License-Identifier: ISC */
#ifndef CONF_H
#define CONF_H

#include <stdio.h>
#include <sys/types.h>

/* Daemon settings from uplinkd.conf(5). */
struct conf {
	char		*datadir;
	char		*pidfile;
	int		 log_level;
	char		*http_listen;
	char		*https_listen;
	char		*unix_socket;
	unsigned int	 unix_socket_mode;
	char		*tls_cert;
	char		*tls_key;
	unsigned int	 max_body_size;
	unsigned int	 max_header_size;
	unsigned int	 max_connections;
	unsigned int	 request_timeout;
	unsigned int	 idle_timeout;
	unsigned int	 token_lifetime;
	unsigned int	 password_iterations;
	unsigned int	 publish_max_records;
	unsigned int	 system_tags_interval;
	char		*mqtt_ingest;
	char		*mqtt_ingest_topic;
	char		*mqtt_ingest_client_id;
	char		*mqtt_ingest_username;
	char		*mqtt_ingest_password;
	char		*mqtt_ingest_write_topic;
	char		*dns_servers;
	unsigned int	 outbox_messages;
	unsigned int	 outbox_bytes;
	char		*cache_disks;
	int		 cache_sync;
	unsigned int	 cache_commit_ms;
	char		*remote_api_allow;
};

void	conf_set_basedir(const char *);
void	conf_defaults(struct conf *);
int	conf_load(const char *, struct conf *, char **);
void	conf_free(struct conf *);
void	conf_dump(const struct conf *, FILE *);
int	conf_set(struct conf *, const char *, const char *, char **);
int	conf_parse_listen(const char *, char **, char **, char **);

#endif
