/* SPDX-License-Identifier: ISC */
/*
 * uplinkd.conf: "key = value" lines, '#' comments, values optionally in
 * double quotes.  One table gives every key its type, default and limits;
 * the same table prints the effective configuration (uplinkd -nv) and
 * the manual page documents each entry (a test keeps them in step).
 */

#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "xmalloc.h"

enum conf_type {
	CONF_PATH,	/* made absolute; "" allowed where def is "" */
	CONF_LISTEN,	/* "address:port" or "off" */
	CONF_SOCKET,	/* a path or "off" */
	CONF_UINT,
	CONF_MODE,	/* octal file mode */
	CONF_STRING,	/* any text up to max bytes */
	CONF_BOOL,	/* yes | no */
	CONF_SYNC,	/* yes | commit | no */
	CONF_LEVEL	/* warning | info | debug */
};

struct conf_key {
	const char	*name;
	enum conf_type	 type;
	size_t		 off;
	const char	*def;
	unsigned long	 min;
	unsigned long	 max;
};

#define O(f)	offsetof(struct conf, f)

static const struct conf_key conf_keys[] = {
	{ "datadir", CONF_PATH, O(datadir), LOCALSTATEDIR "/lib/uplinkd", 0,
	    0 },
	{ "pidfile", CONF_PATH, O(pidfile), RUNSTATEDIR "/uplinkd.pid", 0, 0 },
	{ "log_level", CONF_LEVEL, O(log_level), "info", 0, 0 },
	{ "http_listen", CONF_LISTEN, O(http_listen), "127.0.0.1:59000", 0, 0 },
	{ "https_listen", CONF_LISTEN, O(https_listen), "0.0.0.0:8443", 0, 0 },
	{ "unix_socket", CONF_SOCKET, O(unix_socket),
	    RUNSTATEDIR "/uplinkd/uplinkd.sock", 0, 0 },
	{ "unix_socket_mode", CONF_MODE, O(unix_socket_mode), "0660", 0, 0777 },
	{ "tls_cert", CONF_PATH, O(tls_cert), "", 0, 0 },
	{ "tls_key", CONF_PATH, O(tls_key), "", 0, 0 },
	{ "max_body_size", CONF_UINT, O(max_body_size), "4194304", 1024,
	    268435456 },
	{ "max_header_size", CONF_UINT, O(max_header_size), "16384", 1024,
	    1048576 },
	{ "max_connections", CONF_UINT, O(max_connections), "256", 1, 65536 },
	{ "request_timeout", CONF_UINT, O(request_timeout), "30", 1, 3600 },
	{ "idle_timeout", CONF_UINT, O(idle_timeout), "60", 1, 86400 },
	{ "token_lifetime", CONF_UINT, O(token_lifetime), "3600", 60,
	    31536000 },
	{ "password_iterations", CONF_UINT, O(password_iterations), "50000",
	    1000, 10000000 },
	{ "publish_max_records", CONF_UINT, O(publish_max_records), "65536",
	    1, 1048576 },
	{ "system_tags_interval", CONF_UINT, O(system_tags_interval), "1", 0,
	    3600 },
	{ "mqtt_ingest", CONF_LISTEN, O(mqtt_ingest), "off", 0, 0 },
	{ "mqtt_ingest_topic", CONF_STRING, O(mqtt_ingest_topic),
	    "uplinkd/tags/#", 1, 65535 },
	{ "mqtt_ingest_client_id", CONF_STRING, O(mqtt_ingest_client_id),
	    "uplinkd-ingest", 1, 23 },
	{ "mqtt_ingest_username", CONF_STRING, O(mqtt_ingest_username), "", 0,
	    255 },
	{ "mqtt_ingest_password", CONF_STRING, O(mqtt_ingest_password), "", 0,
	    255 },
	{ "mqtt_ingest_write_topic", CONF_STRING, O(mqtt_ingest_write_topic),
	    "", 0, 65535 },
	{ "dns_servers", CONF_STRING, O(dns_servers), "", 0, 1024 },
	{ "outbox_messages", CONF_UINT, O(outbox_messages), "10000", 1,
	    10000000 },
	{ "outbox_bytes", CONF_UINT, O(outbox_bytes), "16777216", 65536,
	    1073741824 },
	{ "cache_disks", CONF_STRING, O(cache_disks), "", 0, 4096 },
	{ "cache_sync", CONF_SYNC, O(cache_sync), "yes", 0, 0 },
	{ "cache_commit_ms", CONF_UINT, O(cache_commit_ms), "100", 10,
	    10000 },
	{ "remote_api_allow", CONF_STRING, O(remote_api_allow), "", 0, 4096 },
	{ NULL, 0, 0, NULL, 0, 0 }
};

static const char *conf_levels[] = { "warning", "info", "debug" };
static const char *conf_syncs[] = { "no", "commit", "yes" };

/* Relative paths are taken from here (the directory uplinkd started in). */
static char	conf_basedir[PATH_MAX];

/* Set the directory relative paths are resolved against. */
void
conf_set_basedir(const char *dir)
{
	snprintf(conf_basedir, sizeof conf_basedir, "%s", dir);
}

/* Split "host:port" or "[v6]:port"; 0 or -1 with *cause. */
int
conf_parse_listen(const char *v, char **host, char **port, char **cause)
{
	const char	*colon;
	char		*h, *end, buf[sizeof(struct in6_addr)];
	unsigned long	 p;

	if (*v == '[') {
		if ((colon = strstr(v, "]:")) == NULL)
			goto bad;
		h = xstrndup(v + 1, colon - v - 1);
		colon++;
	} else {
		if ((colon = strrchr(v, ':')) == NULL || colon == v ||
		    strchr(v, ':') != colon)
			goto bad;	/* IPv6 addresses need brackets */
		h = xstrndup(v, colon - v);
	}
	if (inet_pton(AF_INET, h, buf) != 1 && inet_pton(AF_INET6, h,
	    buf) != 1) {
		xasprintf(cause, "\"%s\": the host must be a numeric IPv4 or "
		    "IPv6 address", v);
		free(h);
		return (-1);
	}
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end != '\0' || errno != 0 ||
	    p == 0 || p > 65535) {
		xasprintf(cause, "\"%s\": the port must be from 1 to 65535", v);
		free(h);
		return (-1);
	}
	if (host != NULL)
		*host = h;
	else
		free(h);
	if (port != NULL)
		*port = xstrdup(colon + 1);
	return (0);
bad:
	xasprintf(cause, "\"%s\": must be address:port, [address]:port or off",
	    v);
	return (-1);
}

/* Apply one value to a key; 0 or -1 with *cause. */
static int
conf_apply(struct conf *c, const struct conf_key *k, const char *v,
    char **cause)
{
	char		**sp = (char **)((char *)c + k->off);
	unsigned int	 *up = (unsigned int *)((char *)c + k->off);
	int		 *ip = (int *)((char *)c + k->off);
	unsigned long	  n;
	char		 *end;
	size_t		  i;

	if (strchr(v, '"') != NULL) {
		/* The file has no escapes: it could not be written back. */
		xasprintf(cause, "%s: must not contain a double quote",
		    k->name);
		return (-1);
	}
	switch (k->type) {
	case CONF_PATH:
	case CONF_SOCKET:
		if (k->type == CONF_SOCKET && strcmp(v, "off") == 0) {
			free(*sp);
			*sp = xstrdup("off");
			break;
		}
		if (*v == '\0' && *k->def != '\0') {
			xasprintf(cause, "%s: must not be empty", k->name);
			return (-1);
		}
		free(*sp);
		if (*v != '\0' && *v != '/') {
			if (*conf_basedir == '\0' &&
			    getcwd(conf_basedir, sizeof conf_basedir) == NULL)
				fatal("getcwd");
			xasprintf(sp, "%s/%s", conf_basedir, v);
		} else
			*sp = xstrdup(v);
		if (k->type == CONF_SOCKET && strlen(*sp) >= 108) {
			xasprintf(cause, "%s: path longer than 107 bytes",
			    k->name);
			return (-1);
		}
		break;
	case CONF_LISTEN:
		if (strcmp(v, "off") != 0 &&
		    conf_parse_listen(v, NULL, NULL, cause) != 0) {
			char *why = *cause;
			xasprintf(cause, "%s: %s", k->name, why);
			free(why);
			return (-1);
		}
		free(*sp);
		*sp = xstrdup(v);
		break;
	case CONF_UINT:
	case CONF_MODE:
		errno = 0;
		n = strtoul(v, &end, k->type == CONF_MODE ? 8 : 10);
		if (*v == '\0' || *end != '\0' || errno != 0 || *v == '-' ||
		    n < k->min || n > k->max) {
			if (k->type == CONF_MODE)
				xasprintf(cause, "%s: must be an octal mode "
				    "from 0 to 0777, not \"%s\"", k->name, v);
			else
				xasprintf(cause, "%s: must be an integer from "
				    "%lu to %lu, not \"%s\"", k->name, k->min,
				    k->max, v);
			return (-1);
		}
		*up = n;
		break;
	case CONF_STRING:
		if (strlen(v) < k->min || strlen(v) > k->max) {
			xasprintf(cause, "%s: must be %lu to %lu bytes long",
			    k->name, k->min, k->max);
			return (-1);
		}
		free(*sp);
		*sp = xstrdup(v);
		break;
	case CONF_SYNC:
		for (i = 0; i < 3; i++)
			if (strcmp(v, conf_syncs[i]) == 0)
				break;
		if (i == 3) {
			xasprintf(cause, "%s: must be one of no, commit, yes, "
			    "not \"%s\"", k->name, v);
			return (-1);
		}
		*ip = i;
		break;
	case CONF_BOOL:
		if (strcmp(v, "yes") == 0)
			*ip = 1;
		else if (strcmp(v, "no") == 0)
			*ip = 0;
		else {
			xasprintf(cause, "%s: must be yes or no, not \"%s\"",
			    k->name, v);
			return (-1);
		}
		break;
	case CONF_LEVEL:
		for (i = 0; i < 3; i++)
			if (strcmp(v, conf_levels[i]) == 0)
				break;
		if (i == 3) {
			xasprintf(cause, "%s: must be one of warning, info, "
			    "debug, not \"%s\"", k->name, v);
			return (-1);
		}
		*ip = i;
		break;
	}
	return (0);
}

/* Set a key by name (also for command-line overrides). */
int
conf_set(struct conf *c, const char *key, const char *value, char **cause)
{
	const struct conf_key	*k;

	for (k = conf_keys; k->name != NULL; k++)
		if (strcmp(k->name, key) == 0)
			return (conf_apply(c, k, value, cause));
	xasprintf(cause, "unknown key \"%s\"", key);
	return (-1);
}

/* Fill every key with its default. */
void
conf_defaults(struct conf *c)
{
	const struct conf_key	*k;
	char			*cause;

	memset(c, 0, sizeof *c);
	for (k = conf_keys; k->name != NULL; k++)
		if (conf_apply(c, k, k->def, &cause) != 0)
			fatalx("default of %s: %s", k->name, cause);
}

/* Strip blanks at both ends, in place. */
static char *
conf_trim(char *s)
{
	char	*e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return (s);
}

/*
 * Read a configuration file over the defaults already in c.  0, or -1
 * with *cause naming the file, the line and the rule.
 */
int
conf_load(const char *path, struct conf *c, char **cause)
{
	FILE	*f;
	char	*line = NULL, *p, *key, *val, *eq, *why, *q;
	size_t	 cap = 0;
	ssize_t	 len;
	int	 lineno = 0, rc = 0;

	if ((f = fopen(path, "r")) == NULL) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		return (-1);
	}
	while ((len = getline(&line, &cap, f)) != -1) {
		lineno++;
		p = conf_trim(line);
		if (*p == '\0' || *p == '#')
			continue;
		if ((eq = strchr(p, '=')) == NULL) {
			xasprintf(cause, "%s:%d: expected \"key = value\"",
			    path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		key = conf_trim(p);
		val = conf_trim(eq + 1);
		if (*val == '"') {
			if ((q = strchr(val + 1, '"')) == NULL) {
				xasprintf(cause, "%s:%d: unterminated quoted "
				    "value", path, lineno);
				rc = -1;
				break;
			}
			*q = '\0';
			val++;
			p = conf_trim(q + 1);
			if (*p != '\0' && *p != '#') {
				xasprintf(cause, "%s:%d: text after the quoted "
				    "value", path, lineno);
				rc = -1;
				break;
			}
		} else {
			/* A comment starts with '#' after white space. */
			for (q = val; *q != '\0'; q++) {
				if (*q == '#' && q > val &&
				    isspace((unsigned char)q[-1])) {
					*q = '\0';
					break;
				}
			}
			val = conf_trim(val);
		}
		if (conf_set(c, key, val, &why) != 0) {
			xasprintf(cause, "%s:%d: %s", path, lineno, why);
			free(why);
			rc = -1;
			break;
		}
	}
	if (rc == 0 && ferror(f)) {
		xasprintf(cause, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	free(line);
	fclose(f);
	return (rc);
}

/* Free the strings of a configuration. */
void
conf_free(struct conf *c)
{
	const struct conf_key	*k;

	for (k = conf_keys; k->name != NULL; k++) {
		if (k->type == CONF_PATH || k->type == CONF_LISTEN ||
		    k->type == CONF_SOCKET || k->type == CONF_STRING) {
			free(*(char **)((char *)c + k->off));
			*(char **)((char *)c + k->off) = NULL;
		}
	}
}

/* Print the effective configuration in the file's own syntax. */
void
conf_dump(const struct conf *c, FILE *f)
{
	const struct conf_key	*k;
	const void		*p;

	for (k = conf_keys; k->name != NULL; k++) {
		p = (const char *)c + k->off;
		switch (k->type) {
		case CONF_PATH:
		case CONF_LISTEN:
		case CONF_SOCKET:
		case CONF_STRING:
			fprintf(f, "%s = \"%s\"\n", k->name,
			    *(char *const *)p);
			break;
		case CONF_UINT:
			fprintf(f, "%s = %u\n", k->name,
			    *(const unsigned int *)p);
			break;
		case CONF_MODE:
			fprintf(f, "%s = %04o\n", k->name,
			    *(const unsigned int *)p);
			break;
		case CONF_LEVEL:
			fprintf(f, "%s = %s\n", k->name,
			    conf_levels[*(const int *)p]);
			break;
		case CONF_BOOL:
			fprintf(f, "%s = %s\n", k->name,
			    *(const int *)p ? "yes" : "no");
			break;
		case CONF_SYNC:
			fprintf(f, "%s = %s\n", k->name,
			    conf_syncs[*(const int *)p]);
			break;
		}
	}
}
