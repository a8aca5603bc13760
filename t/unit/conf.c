/* SPDX-License-Identifier: ISC */
/*
 * Unit tests for uplinkd.conf parsing (conf.c): the defaults, a file
 * setting every key, the lexical corners (comments, blanks, quotes, CRLF),
 * every error with its file:line and rule, listen addresses, relative
 * paths, and conf_dump() output reading back to the same configuration.
 */

#include <sys/stat.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "tap.h"
#include "util.h"
#include "xmalloc.h"

static char	conf_test_dir[] = "/tmp/uplinkd-conf-test.XXXXXX";
static int	conf_test_files;

/* Write text to a new file of the test directory; caller frees the path. */
static char *
conf_test_file(const char *text)
{
	char	*path, *cause = NULL;

	xasprintf(&path, "%s/test%d.conf", conf_test_dir, ++conf_test_files);
	if (util_write_file(path, text, strlen(text), 0644, &cause) != 0) {
		printf("Bail out! %s\n", cause);
		exit(1);
	}
	return (path);
}

/* Compare two strings that may be NULL. */
static int
conf_test_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return (a == b);
	return (strcmp(a, b) == 0);
}

/* Are two configurations the same, key by key?  Names the first miss. */
static int
conf_test_equal(const struct conf *a, const struct conf *b)
{
#define CONF_TEST_STR(f) do {						\
	if (!conf_test_streq(a->f, b->f)) {				\
		printf("#   %s: \"%s\" != \"%s\"\n", #f, a->f, b->f);	\
		return (0);						\
	}								\
} while (0)
#define CONF_TEST_NUM(f) do {						\
	if (a->f != b->f) {						\
		printf("#   %s: %u != %u\n", #f, (unsigned int)a->f,	\
		    (unsigned int)b->f);				\
		return (0);						\
	}								\
} while (0)
	CONF_TEST_STR(datadir);
	CONF_TEST_STR(pidfile);
	CONF_TEST_NUM(log_level);
	CONF_TEST_STR(http_listen);
	CONF_TEST_STR(https_listen);
	CONF_TEST_STR(unix_socket);
	CONF_TEST_NUM(unix_socket_mode);
	CONF_TEST_STR(tls_cert);
	CONF_TEST_STR(tls_key);
	CONF_TEST_NUM(max_body_size);
	CONF_TEST_NUM(max_header_size);
	CONF_TEST_NUM(max_connections);
	CONF_TEST_NUM(request_timeout);
	CONF_TEST_NUM(idle_timeout);
	CONF_TEST_NUM(token_lifetime);
	CONF_TEST_NUM(password_iterations);
#undef CONF_TEST_STR
#undef CONF_TEST_NUM
	return (1);
}

/* Load text over the defaults into c; 0 or -1 with *cause. */
static int
conf_test_load(const char *text, struct conf *c, char **path, char **cause)
{
	*path = conf_test_file(text);
	*cause = NULL;
	conf_defaults(c);
	return (conf_load(*path, c, cause));
}

/* Expect text to be refused with "<file>:<line>: <rule>" exactly. */
static void
conf_test_bad(const char *text, int line, const char *rule, const char *name)
{
	struct conf	 c;
	char		*path, *cause, *want;

	if (conf_test_load(text, &c, &path, &cause) == 0) {
		tap_ok(0, name);
		printf("#   accepted:\n#   %s\n", text);
	} else {
		xasprintf(&want, "%s:%d: %s", path, line, rule);
		tap_is_str(cause, want, name);
		free(want);
	}
	conf_free(&c);
	free(cause);
	free(path);
}

/* Expect one key = value line to be accepted; c is filled (caller frees). */
static int
conf_test_ok(const char *text, struct conf *c)
{
	char	*path, *cause;
	int	 rc;

	rc = conf_test_load(text, c, &path, &cause);
	if (rc != 0)
		printf("#   refused: %s\n", cause);
	free(cause);
	free(path);
	return (rc == 0);
}

/* Is value v accepted for key?  Borrows everything. */
static int
conf_test_value_ok(const char *key, const char *v)
{
	struct conf	 c;
	char		*cause = NULL;
	int		 rc;

	conf_defaults(&c);
	rc = conf_set(&c, key, v, &cause);
	if (rc != 0)
		printf("#   %s = %s: %s\n", key, v, cause);
	free(cause);
	conf_free(&c);
	return (rc == 0);
}

/* conf_dump() of c, as a string; caller frees. */
static char *
conf_test_dump(const struct conf *c)
{
	char	*buf = NULL;
	size_t	 len = 0;
	FILE	*f;

	if ((f = open_memstream(&buf, &len)) == NULL)
		return (NULL);
	conf_dump(c, f);
	fclose(f);
	return (buf);
}

/* Dump c, load the dump over the defaults: the same configuration? */
static int
conf_test_roundtrip(const struct conf *c, char **dumped)
{
	struct conf	 back;
	char		*text, *path, *cause;
	int		 good;

	text = conf_test_dump(c);
	good = conf_test_load(text, &back, &path, &cause) == 0 &&
	    conf_test_equal(c, &back);
	if (cause != NULL)
		printf("#   reload: %s\n", cause);
	conf_free(&back);
	free(cause);
	free(path);
	if (dumped != NULL)
		*dumped = text;
	else
		free(text);
	return (good);
}

static int
conf_test_rm_cb(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return (remove(path));
}

/* The built-in defaults. */
static void
conf_test_defaults(void)
{
	struct conf	c;

	conf_defaults(&c);
	tap_ok(strcmp(c.datadir, LOCALSTATEDIR "/lib/uplinkd") == 0 &&
	    strcmp(c.pidfile, RUNSTATEDIR "/uplinkd.pid") == 0 &&
	    strcmp(c.unix_socket, RUNSTATEDIR "/uplinkd/uplinkd.sock") == 0,
	    "default paths under the configured directories");
	tap_ok(strcmp(c.http_listen, "127.0.0.1:59000") == 0 &&
	    strcmp(c.https_listen, "0.0.0.0:8443") == 0,
	    "default listeners: HTTP on loopback 59000, HTTPS on 8443");
	tap_ok(c.unix_socket_mode == 0660 && c.log_level == LOG_LEVEL_INFO &&
	    strcmp(c.tls_cert, "") == 0 && strcmp(c.tls_key, "") == 0,
	    "socket mode 0660, log level info, no TLS files");
	tap_ok(c.max_body_size == 4194304 && c.max_header_size == 16384 &&
	    c.max_connections == 256 && c.request_timeout == 30 &&
	    c.idle_timeout == 60 && c.token_lifetime == 3600 &&
	    c.password_iterations == 50000, "default limits");
	conf_free(&c);
	tap_ok(c.datadir == NULL && c.http_listen == NULL &&
	    c.unix_socket == NULL, "conf_free clears the strings");
	conf_free(&c);
}

/* A file with every key, and the lexical corners. */
static void
conf_test_syntax(void)
{
	struct conf	 c;
	char		*path, *cause;

	tap_ok(conf_test_ok(
	    "# every key, not the defaults\n"
	    "\n"
	    "datadir = /srv/uplinkd\n"
	    "pidfile = /srv/run/uplinkd.pid\n"
	    "log_level = debug\n"
	    "http_listen = 10.0.0.1:8080\n"
	    "https_listen = [::]:9443\n"
	    "unix_socket = /srv/run/u.sock\n"
	    "unix_socket_mode = 0600\n"
	    "tls_cert = /srv/tls/cert.pem\n"
	    "tls_key = /srv/tls/key.pem\n"
	    "max_body_size = 1048576\n"
	    "max_header_size = 8192\n"
	    "max_connections = 64\n"
	    "request_timeout = 10\n"
	    "idle_timeout = 20\n"
	    "token_lifetime = 600\n"
	    "password_iterations = 100000\n", &c),
	    "a file setting every key loads");
	tap_ok(strcmp(c.datadir, "/srv/uplinkd") == 0 &&
	    strcmp(c.pidfile, "/srv/run/uplinkd.pid") == 0 &&
	    c.log_level == LOG_LEVEL_DEBUG &&
	    strcmp(c.http_listen, "10.0.0.1:8080") == 0 &&
	    strcmp(c.https_listen, "[::]:9443") == 0 &&
	    strcmp(c.unix_socket, "/srv/run/u.sock") == 0 &&
	    c.unix_socket_mode == 0600 &&
	    strcmp(c.tls_cert, "/srv/tls/cert.pem") == 0 &&
	    strcmp(c.tls_key, "/srv/tls/key.pem") == 0,
	    "every string key took its value");
	tap_ok(c.max_body_size == 1048576 && c.max_header_size == 8192 &&
	    c.max_connections == 64 && c.request_timeout == 10 &&
	    c.idle_timeout == 20 && c.token_lifetime == 600 &&
	    c.password_iterations == 100000, "every number took its value");
	tap_ok(conf_test_roundtrip(&c, NULL), "conf_dump of every key reads "
	    "back the same");
	conf_free(&c);

	tap_ok(conf_test_ok(
	    "   # an indented comment\n"
	    "\t\n"
	    "  max_connections\t=\t12   # twelve\n"
	    "tls_cert = \"/etc/ssl/a#b.pem\"   # a # inside quotes\n"
	    "tls_key=\"/etc/ssl/k y.pem\"\n"
	    "log_level=warning #a comment after a blank\n"
	    "mqtt_ingest_topic = plant/tags/#\n"
	    "datadir = /var/lib/a=b\n"
	    "request_timeout = 5\r\n"
	    "idle_timeout = 7", &c),
	    "comments, blanks, tabs, quotes, CRLF and no final newline");
	tap_ok(c.max_connections == 12 && c.log_level == LOG_LEVEL_WARN &&
	    c.request_timeout == 5 && c.idle_timeout == 7,
	    "trailing comments and CR are not part of the value");
	tap_ok(strcmp(c.tls_cert, "/etc/ssl/a#b.pem") == 0 &&
	    strcmp(c.tls_key, "/etc/ssl/k y.pem") == 0,
	    "quoted values keep '#' and blanks");
	tap_ok(strcmp(c.datadir, "/var/lib/a=b") == 0,
	    "the first '=' separates; the value may contain more");
	tap_ok(strcmp(c.mqtt_ingest_topic, "plant/tags/#") == 0,
	    "a '#' with no blank before it is part of the value");
	conf_free(&c);
	tap_ok(conf_test_load("pidfile = \"\"\n", &c, &path, &cause) == -1 &&
	    strstr(cause, "pidfile: must not be empty") != NULL,
	    "an empty pidfile is refused (it has a default)");
	conf_free(&c);
	free(path);
	free(cause);
	tap_ok(conf_test_ok("tls_cert = \"\"# none\ntls_key =\n", &c) &&
	    strcmp(c.tls_cert, "") == 0 && strcmp(c.tls_key, "") == 0,
	    "an empty tls_cert or tls_key means none");
	conf_free(&c);
	tap_ok(conf_test_ok("max_connections = 1\nmax_connections = 9\n",
	    &c) && c.max_connections == 9, "a key given twice: the last wins");
	conf_free(&c);
	tap_ok(conf_test_ok("", &c) && c.max_connections == 256,
	    "an empty file leaves the defaults");
	conf_free(&c);
}

/* Every error names the file, the line and the rule. */
static void
conf_test_errors(void)
{
	struct conf	 c;
	char		*cause = NULL, *path;

	conf_test_bad("# ok\nmax_connections = 5\nbogus = 1\n", 3,
	    "unknown key \"bogus\"", "an unknown key, on line 3");
	conf_test_bad("= 5\n", 1, "unknown key \"\"", "an empty key");
	conf_test_bad("log_level = info\nmax_connections 5\n", 2,
	    "expected \"key = value\"", "a line without '='");
	conf_test_bad("tls_cert = \"/a/b\n", 1, "unterminated quoted value",
	    "an unterminated quote");
	conf_test_bad("tls_cert = \"/a\" b\n", 1, "text after the quoted value",
	    "text after a quoted value");
	conf_test_bad("max_body_size = 1023\n", 1, "max_body_size: must be an "
	    "integer from 1024 to 268435456, not \"1023\"",
	    "max_body_size below its range");
	conf_test_bad("max_body_size = 268435457\n", 1, "max_body_size: must "
	    "be an integer from 1024 to 268435456, not \"268435457\"",
	    "max_body_size above its range");
	conf_test_bad("max_connections = 0\n", 1, "max_connections: must be an "
	    "integer from 1 to 65536, not \"0\"", "max_connections 0");
	conf_test_bad("token_lifetime = 59\n", 1, "token_lifetime: must be an "
	    "integer from 60 to 31536000, not \"59\"", "token_lifetime 59");
	conf_test_bad("idle_timeout = -1\n", 1, "idle_timeout: must be an "
	    "integer from 1 to 86400, not \"-1\"", "a negative number");
	conf_test_bad("idle_timeout = 99999999999999999999999\n", 1,
	    "idle_timeout: must be an integer from 1 to 86400, not "
	    "\"99999999999999999999999\"", "a number beyond unsigned long");
	conf_test_bad("request_timeout = 10s\n", 1, "request_timeout: must be "
	    "an integer from 1 to 3600, not \"10s\"", "a unit after a number");
	conf_test_bad("request_timeout =\n", 1, "request_timeout: must be an "
	    "integer from 1 to 3600, not \"\"", "an empty number");
	conf_test_bad("password_iterations = 0x1000\n", 1, "password_iterations"
	    ": must be an integer from 1000 to 10000000, not \"0x1000\"",
	    "hexadecimal is not a number here");
	conf_test_bad("unix_socket_mode = 0778\n", 1, "unix_socket_mode: must "
	    "be an octal mode from 0 to 0777, not \"0778\"",
	    "an 8 in an octal mode");
	conf_test_bad("unix_socket_mode = 1000\n", 1, "unix_socket_mode: must "
	    "be an octal mode from 0 to 0777, not \"1000\"",
	    "an octal mode above 0777");
	conf_test_bad("unix_socket_mode = rw\n", 1, "unix_socket_mode: must "
	    "be an octal mode from 0 to 0777, not \"rw\"", "a symbolic mode");
	conf_test_bad("log_level = verbose\n", 1, "log_level: must be one of "
	    "warning, info, debug, not \"verbose\"", "an unknown log level");
	conf_test_bad("log_level = INFO\n", 1, "log_level: must be one of "
	    "warning, info, debug, not \"INFO\"", "log levels are lower case");
	conf_test_bad("bogus = 1\nalso bad\n", 1, "unknown key \"bogus\"",
	    "the first error is the one reported");

	path = util_path(conf_test_dir, "does-not-exist.conf");
	conf_defaults(&c);
	tap_ok(conf_load(path, &c, &cause) == -1 && strstr(cause, path) ==
	    cause && strstr(cause, "No such file") != NULL,
	    "a missing file: the cause names it");
	conf_free(&c);
	free(cause);
	free(path);
	conf_defaults(&c);
	cause = NULL;
	tap_ok(conf_set(&c, "nope", "1", &cause) == -1 &&
	    strcmp(cause, "unknown key \"nope\"") == 0,
	    "conf_set: an unknown key");
	conf_free(&c);
	free(cause);

	tap_ok(conf_test_value_ok("unix_socket_mode", "0") &&
	    conf_test_value_ok("unix_socket_mode", "777") &&
	    conf_test_value_ok("max_connections", "65536") &&
	    conf_test_value_ok("max_body_size", "1024") &&
	    conf_test_value_ok("password_iterations", "10000000"),
	    "the limits themselves are accepted");
	conf_defaults(&c);
	if (conf_set(&c, "unix_socket_mode", "640", &cause) != 0)
		free(cause);
	tap_ok(c.unix_socket_mode == 0640, "a mode without a leading 0 is "
	    "still octal");
	conf_free(&c);
}

/* Listen addresses and the socket. */
static void
conf_test_listen(void)
{
	struct conf	 c;
	char		*host = NULL, *port = NULL, *cause = NULL, *longp;
	int		 rc;

	conf_test_bad("http_listen = 127.0.0.1\n", 1, "http_listen: "
	    "\"127.0.0.1\": must be address:port, [address]:port or off",
	    "an address without a port");
	conf_test_bad("https_listen = 127.0.0.1:0\n", 1, "https_listen: "
	    "\"127.0.0.1:0\": the port must be from 1 to 65535", "port 0");
	conf_test_bad("http_listen = 127.0.0.1:65536\n", 1, "http_listen: "
	    "\"127.0.0.1:65536\": the port must be from 1 to 65535",
	    "port 65536");
	conf_test_bad("http_listen = 127.0.0.1:\n", 1, "http_listen: "
	    "\"127.0.0.1:\": the port must be from 1 to 65535",
	    "an empty port");
	conf_test_bad("http_listen = 127.0.0.1:http\n", 1, "http_listen: "
	    "\"127.0.0.1:http\": the port must be from 1 to 65535",
	    "a service name for a port");
	conf_test_bad("http_listen = localhost:80\n", 1, "http_listen: "
	    "\"localhost:80\": the host must be a numeric IPv4 or IPv6 address",
	    "a host name");
	conf_test_bad("http_listen = 256.0.0.1:80\n", 1, "http_listen: "
	    "\"256.0.0.1:80\": the host must be a numeric IPv4 or IPv6 address",
	    "an IPv4 address out of range");
	conf_test_bad("http_listen = :80\n", 1, "http_listen: \":80\": must be "
	    "address:port, [address]:port or off", "no host at all");
	conf_test_bad("https_listen = [::1]\n", 1, "https_listen: \"[::1]\": "
	    "must be address:port, [address]:port or off",
	    "a bracketed IPv6 address without a port");
	conf_test_bad("https_listen = [::1]:\n", 1, "https_listen: \"[::1]:\": "
	    "the port must be from 1 to 65535", "brackets and an empty port");
	conf_test_bad("https_listen = [nope]:80\n", 1, "https_listen: "
	    "\"[nope]:80\": the host must be a numeric IPv4 or IPv6 address",
	    "a name in brackets");
	conf_test_bad("http_listen = OFF\n", 1, "http_listen: \"OFF\": must be "
	    "address:port, [address]:port or off", "\"off\" is lower case");

	tap_ok(conf_test_ok("http_listen = [::1]:59000\n"
	    "https_listen = [fe80::1:2]:8443\n", &c) &&
	    strcmp(c.http_listen, "[::1]:59000") == 0 &&
	    strcmp(c.https_listen, "[fe80::1:2]:8443") == 0,
	    "IPv6 addresses in brackets are accepted as written");
	conf_free(&c);
	tap_ok(conf_test_ok("http_listen = off\nhttps_listen = \"off\"\n"
	    "unix_socket = off\n", &c) && strcmp(c.http_listen, "off") == 0 &&
	    strcmp(c.https_listen, "off") == 0 &&
	    strcmp(c.unix_socket, "off") == 0,
	    "off switches each listener and the socket off");
	tap_ok(conf_test_roundtrip(&c, NULL), "and \"off\" survives a dump");
	conf_free(&c);
	tap_ok(conf_test_value_ok("http_listen", "0.0.0.0:1") &&
	    conf_test_value_ok("http_listen", "192.168.1.1:65535") &&
	    conf_test_value_ok("https_listen", "[::]:443"),
	    "ports 1 and 65535, the any addresses");

	rc = conf_parse_listen("[2001:db8::7]:8443", &host, &port, &cause);
	tap_ok(rc == 0 && strcmp(host, "2001:db8::7") == 0 &&
	    strcmp(port, "8443") == 0,
	    "conf_parse_listen strips the brackets and splits the port");
	free(host);
	free(port);
	rc = conf_parse_listen("10.1.2.3:80", &host, &port, &cause);
	tap_ok(rc == 0 && strcmp(host, "10.1.2.3") == 0 &&
	    strcmp(port, "80") == 0, "conf_parse_listen on IPv4");
	free(host);
	free(port);

	longp = xmalloc(200);
	memset(longp, 'x', 199);
	longp[0] = '/';
	longp[199] = '\0';
	conf_defaults(&c);
	cause = NULL;
	tap_ok(conf_set(&c, "unix_socket", longp, &cause) == -1 &&
	    strcmp(cause, "unix_socket: path longer than 107 bytes") == 0,
	    "a socket path too long for sun_path is refused");
	free(cause);
	conf_free(&c);
	longp[107] = '\0';
	tap_ok(conf_test_value_ok("unix_socket", longp),
	    "a 107-byte socket path fits");
	free(longp);
}

/* Relative paths are made absolute against the base directory. */
static void
conf_test_paths(void)
{
	struct conf	c;

	conf_set_basedir("/opt/base");
	tap_ok(conf_test_ok("datadir = data\npidfile = run/u.pid\n"
	    "tls_cert = \"certs/c.pem\"\nunix_socket = u.sock\n", &c) &&
	    strcmp(c.datadir, "/opt/base/data") == 0 &&
	    strcmp(c.pidfile, "/opt/base/run/u.pid") == 0 &&
	    strcmp(c.tls_cert, "/opt/base/certs/c.pem") == 0 &&
	    strcmp(c.unix_socket, "/opt/base/u.sock") == 0,
	    "relative paths are taken from the base directory");
	tap_ok(conf_test_roundtrip(&c, NULL),
	    "a dump holds the absolute paths and reads back the same");
	conf_free(&c);
	tap_ok(conf_test_ok("datadir = /abs/data\n", &c) &&
	    strcmp(c.datadir, "/abs/data") == 0, "absolute paths stay as they "
	    "are");
	conf_free(&c);
}

/* conf_dump() output is a configuration file. */
static void
conf_test_dumps(void)
{
	struct conf	 c;
	char		*text = NULL;

	conf_defaults(&c);
	tap_ok(conf_test_roundtrip(&c, &text), "the defaults dump and read "
	    "back the same");
	tap_ok(text != NULL && strstr(text, "unix_socket_mode = 0660\n") !=
	    NULL && strstr(text, "log_level = info\n") != NULL &&
	    strstr(text, "http_listen = \"127.0.0.1:59000\"\n") != NULL &&
	    strstr(text, "max_body_size = 4194304\n") != NULL &&
	    strstr(text, "tls_cert = \"\"\n") != NULL,
	    "the dump has one key = value line per key, modes in octal");
	free(text);
	conf_free(&c);

	tap_ok(conf_test_ok("tls_cert = \"/etc/a # b/c.pem\"\n"
	    "tls_key = \"/etc/with space/k.pem\"\nunix_socket_mode = 0\n"
	    "log_level = warning\n", &c), "values with '#', blanks, mode 0");
	tap_ok(conf_test_roundtrip(&c, &text) &&
	    strstr(text, "unix_socket_mode = 0000\n") != NULL,
	    "they survive a dump and a reload");
	free(text);
	conf_free(&c);
}

int
main(void)
{
	if (mkdtemp(conf_test_dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	conf_test_defaults();
	conf_test_syntax();
	conf_test_errors();
	conf_test_listen();
	conf_test_paths();
	conf_test_dumps();
	nftw(conf_test_dir, conf_test_rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	return (tap_done());
}
