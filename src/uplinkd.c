/* SPDX-License-Identifier: ISC */
/*
 * uplinkd: the northbound half of an industrial edge gateway.
 *
 * This file is the daemon: options, the configuration file, daemonising
 * (the parent waits until the child is ready, so an init script sees
 * whether the start worked), the pidfile, signals, and the one
 * event_base everything runs on.
 */

#include <sys/file.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "api.h"
#include "cloud.h"
#include "cloud_mqtt.h"
#include "auth.h"
#include "conf.h"
#include "http.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "remote.h"
#include "store.h"
#include "tag.h"
#include "tagsrc_mqtt.h"
#include "tagsrc_system.h"
#include "tagsrc_virtual.h"
#include "tls.h"
#include "uplinkd.h"
#include "util.h"
#include "xmalloc.h"

#define UPLINKD_LAG_MS	500

struct uplinkd {
	struct event_base	*base;
	struct conf		 conf;
	const char		*conffile;
	int			 conffile_given;
	const char		*opt_datadir;
	const char		*opt_pidfile;
	int			 opt_debug;
	int			 ready_fd;	/* to the waiting parent */
	int			 pid_fd;
	struct store		*store;
	struct http		*http;
	struct event		*sig[4];
	struct event		*lag;
	uint64_t		 lag_last;
	uint64_t		 start_ms;
};

static struct uplinkd	 uplinkd;

static void	uplinkd_usage(void) __attribute__((__noreturn__));
static int	uplinkd_load(struct conf *, char **);
static void	uplinkd_fail(const char *, ...)
		    __attribute__((__format__(__printf__, 1, 2),
		    __noreturn__));
static void	uplinkd_daemonize(void);
static void	uplinkd_ready(void);
static void	uplinkd_pidfile(void);
static void	uplinkd_signal_cb(evutil_socket_t, short, void *);
static void	uplinkd_lag_cb(evutil_socket_t, short, void *);
static void	uplinkd_reload(void);
static void	uplinkd_event_log_cb(int, const char *);

static void
uplinkd_usage(void)
{
	fprintf(stderr, "usage: uplinkd [-dnVv] [-D datadir] [-f file] "
	    "[-p pidfile]\n");
	exit(1);
}

/* Seconds since start. */
uint64_t
uplinkd_uptime(void)
{
	return ((util_now_ms() - uplinkd.start_ms) / 1000);
}

/* The event base, for modules that need timers. */
struct event_base *
uplinkd_base(void)
{
	return (uplinkd.base);
}

/* Defaults, then the file, then the command line. */
static int
uplinkd_load(struct conf *c, char **cause)
{
	conf_defaults(c);
	if (uplinkd.conffile_given || access(uplinkd.conffile, F_OK) == 0) {
		if (conf_load(uplinkd.conffile, c, cause) != 0)
			return (-1);
	}
	if (uplinkd.opt_datadir != NULL &&
	    conf_set(c, "datadir", uplinkd.opt_datadir, cause) != 0)
		return (-1);
	if (uplinkd.opt_pidfile != NULL &&
	    conf_set(c, "pidfile", uplinkd.opt_pidfile, cause) != 0)
		return (-1);
	if (uplinkd.opt_debug)
		c->log_level = LOG_LEVEL_DEBUG;
	return (0);
}

/* A start-up failure: tell the waiting parent (if any), log, exit 1. */
static void
uplinkd_fail(const char *fmt, ...)
{
	char	msg[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (uplinkd.pid_fd != -1)
		unlink(uplinkd.conf.pidfile);
	if (uplinkd.ready_fd != -1) {
		/* Nothing more can be done if the parent is gone. */
		(void)!write(uplinkd.ready_fd, msg, strlen(msg));
		close(uplinkd.ready_fd);
	}
	fatalx("%s", msg);
}

/*
 * Fork into the background.  The parent waits on a pipe: a "+" means the
 * child is serving; anything else is the child's reason for failing.
 */
static void
uplinkd_daemonize(void)
{
	int	fds[2], null;
	pid_t	pid;
	char	buf[1024];
	ssize_t	n, len = 0;

	if (pipe2(fds, O_CLOEXEC) == -1)
		fatal("pipe");
	switch (pid = fork()) {
	case -1:
		fatal("fork");
	case 0:
		break;
	default:
		close(fds[1]);
		while (len < (ssize_t)sizeof buf - 1 &&
		    (n = read(fds[0], buf + len, sizeof buf - 1 - len)) != 0) {
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1)
				break;
			len += n;
		}
		buf[len] = '\0';
		if (len > 0 && buf[0] == '+')
			exit(0);
		fprintf(stderr, "uplinkd: %s\n", len > 0 ? buf :
		    "exited during start-up");
		exit(1);
	}
	close(fds[0]);
	uplinkd.ready_fd = fds[1];
	if (setsid() == -1)
		fatal("setsid");
	if (chdir("/") == -1)
		fatal("chdir");
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDIN_FILENO);
		dup2(null, STDOUT_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* Start-up is over: release the parent; stderr goes quiet. */
static void
uplinkd_ready(void)
{
	int	null;

	if (uplinkd.ready_fd == -1)
		return;
	(void)!write(uplinkd.ready_fd, "+", 1);
	close(uplinkd.ready_fd);
	uplinkd.ready_fd = -1;
	if ((null = open("/dev/null", O_RDWR)) != -1) {
		dup2(null, STDERR_FILENO);
		if (null > STDERR_FILENO)
			close(null);
	}
}

/* Write and lock the pidfile; a second daemon finds it locked. */
static void
uplinkd_pidfile(void)
{
	char	buf[32], *cause, *dir, *slash;
	int	fd;

	dir = xstrdup(uplinkd.conf.pidfile);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (util_mkdirs(dir, 0755, &cause) != 0)
			uplinkd_fail("pidfile: %s", cause);
	}
	free(dir);
	fd = open(uplinkd.conf.pidfile, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd == -1)
		uplinkd_fail("pidfile %s: %s", uplinkd.conf.pidfile,
		    strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == -1) {
		memset(buf, 0, sizeof buf);
		if (read(fd, buf, sizeof buf - 1) == -1)
			buf[0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		uplinkd_fail("pidfile %s: locked; uplinkd is already running "
		    "(pid %s)", uplinkd.conf.pidfile, buf);
	}
	snprintf(buf, sizeof buf, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == -1 || write(fd, buf, strlen(buf)) == -1)
		uplinkd_fail("pidfile %s: %s", uplinkd.conf.pidfile,
		    strerror(errno));
	uplinkd.pid_fd = fd;
}

/* SIGHUP: read the configuration file again and apply what can change. */
static void
uplinkd_reload(void)
{
	struct conf	 next;
	char		*cause = NULL;

	if (uplinkd_load(&next, &cause) != 0) {
		log_warnx("reload: %s; keeping the running configuration",
		    cause);
		free(cause);
		conf_free(&next);
		return;
	}
	if (strcmp(next.datadir, uplinkd.conf.datadir) != 0 ||
	    strcmp(next.pidfile, uplinkd.conf.pidfile) != 0) {
		log_warnx("reload: datadir and pidfile change only on restart");
		free(next.datadir);
		next.datadir = xstrdup(uplinkd.conf.datadir);
		free(next.pidfile);
		next.pidfile = xstrdup(uplinkd.conf.pidfile);
	}
	if (http_reconfigure(uplinkd.http, &next, &cause) != 0) {
		log_warnx("reload: %s", cause);
		free(cause);
		cause = NULL;
	}
	if (tagsrc_mqtt_reconfigure(&next, &cause) != 0) {
		log_warnx("reload: %s", cause);
		free(cause);
		cause = NULL;
	}
	if (auth_reload(&cause) != 0) {
		log_warnx("reload: %s", cause);
		free(cause);
	}
	auth_set_lifetime(next.token_lifetime);
	auth_set_iterations(next.password_iterations);
	api_tags_set_max_records(next.publish_max_records);
	remote_set_allow(next.remote_api_allow);
	log_setlevel(next.log_level);
	conf_free(&uplinkd.conf);
	uplinkd.conf = next;
	log_info("reloaded configuration file=%s", uplinkd.conffile);
}

/* TERM/INT stop, HUP reloads, USR1 toggles debug logging. */
static void
uplinkd_signal_cb(evutil_socket_t sig, __attribute__((unused)) short events,
    __attribute__((unused)) void *arg)
{
	struct timeval	tv = { 0, 200000 };

	switch (sig) {
	case SIGTERM:
	case SIGINT:
		log_info("stopping signal=%s", sig == SIGTERM ? "TERM" : "INT");
		http_stop(uplinkd.http);
		/* Let replies already queued reach their clients. */
		event_base_loopexit(uplinkd.base, &tv);
		break;
	case SIGHUP:
		uplinkd_reload();
		break;
	case SIGUSR1:
		log_info("debug logging %s", log_toggle_debug() ? "on" : "off");
		break;
	}
}

/* libevent's own messages, into our log. */
static void
uplinkd_event_log_cb(int severity, const char *msg)
{
	if (severity >= EVENT_LOG_WARN)
		log_warnx("libevent: %s", msg);
	else
		log_debug("libevent: %s", msg);
}

/* Every UPLINKD_LAG_MS: how late did this timer run? */
static void
uplinkd_lag_cb(__attribute__((unused)) evutil_socket_t fd,
    __attribute__((unused)) short events, __attribute__((unused)) void *arg)
{
	uint64_t	now = util_now_ms(), due;

	due = uplinkd.lag_last + UPLINKD_LAG_MS;
	metrics_loop_lag(now > due ? (now - due) * 1000 : 0);
	uplinkd.lag_last = now;
}

int
main(int argc, char **argv)
{
	static const int	 sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
	struct timeval		 tv = { 0, UPLINKD_LAG_MS * 1000 };
	char			*cause = NULL, *path, cwd[PATH_MAX];
	struct event_config	*evcfg;
	int			 ch, foreground = 0, check = 0, verbose = 0;
	size_t			 i;

	uplinkd.ready_fd = -1;
	uplinkd.pid_fd = -1;
	uplinkd.conffile = SYSCONFDIR "/uplinkd.conf";
	log_init(1, LOG_LEVEL_INFO);

	while ((ch = getopt(argc, argv, "D:df:np:Vv")) != -1) {
		switch (ch) {
		case 'D':
			uplinkd.opt_datadir = optarg;
			break;
		case 'd':
			foreground = 1;
			break;
		case 'f':
			uplinkd.conffile = optarg;
			uplinkd.conffile_given = 1;
			break;
		case 'n':
			check = 1;
			break;
		case 'p':
			uplinkd.opt_pidfile = optarg;
			break;
		case 'V':
			printf("uplinkd %s\n", PACKAGE_VERSION);
			exit(0);
		case 'v':
			verbose++;
			break;
		default:
			uplinkd_usage();
		}
	}
	if (optind != argc)
		uplinkd_usage();
	/* Daemonising leaves the start directory; keep paths absolute. */
	if (getcwd(cwd, sizeof cwd) == NULL)
		fatal("getcwd");
	conf_set_basedir(cwd);
	if (*uplinkd.conffile != '/') {
		xasprintf(&path, "%s/%s", cwd, uplinkd.conffile);
		uplinkd.conffile = path;
	}
	uplinkd.opt_debug = verbose > 0 && !check;

	if (uplinkd_load(&uplinkd.conf, &cause) != 0) {
		fprintf(stderr, "uplinkd: %s\n", cause);
		exit(1);
	}
	if (check) {
		if (*uplinkd.conf.tls_cert != '\0' || *uplinkd.conf.tls_key !=
		    '\0') {
			SSL_CTX *ctx = NULL;
			if (*uplinkd.conf.tls_cert == '\0' ||
			    *uplinkd.conf.tls_key == '\0')
				xasprintf(&cause, "tls_cert and tls_key must "
				    "be set together");
			else
				ctx = tls_server_ctx(uplinkd.conf.tls_cert,
				    uplinkd.conf.tls_key, &cause);
			if (ctx == NULL) {
				fprintf(stderr, "uplinkd: %s\n", cause);
				exit(1);
			}
			SSL_CTX_free(ctx);
		}
		if (verbose)
			conf_dump(&uplinkd.conf, stdout);
		printf("configuration OK\n");
		exit(0);
	}

	signal(SIGPIPE, SIG_IGN);
	if (!foreground)
		uplinkd_daemonize();
	log_init(foreground, uplinkd.conf.log_level);
	uplinkd.start_ms = util_now_ms();

	umask(022);
	if (util_mkdirs(uplinkd.conf.datadir, 0700, &cause) != 0)
		uplinkd_fail("datadir: %s", cause);
	if (chmod(uplinkd.conf.datadir, 0700) == -1)
		uplinkd_fail("datadir %s: %s", uplinkd.conf.datadir,
		    strerror(errno));
	uplinkd_pidfile();

	path = util_path(uplinkd.conf.datadir, "config.tch");
	if ((uplinkd.store = store_open(path, &cause)) == NULL)
		uplinkd_fail("%s", cause);
	free(path);
	if (auth_init(uplinkd.store, uplinkd.conf.datadir, &cause) != 0)
		uplinkd_fail("%s", cause);
	auth_set_lifetime(uplinkd.conf.token_lifetime);
	auth_set_iterations(uplinkd.conf.password_iterations);
	metrics_init();
	api_init(uplinkd.store);
	api_tags_set_max_records(uplinkd.conf.publish_max_records);

	/*
	 * The epoll change list saves the epoll_ctl() pairs evhttp makes
	 * around every request; uplinkd never dup()s a descriptor it
	 * watches, the one case the change list gets wrong.
	 */
	if ((evcfg = event_config_new()) == NULL)
		uplinkd_fail("event_config_new failed");
	event_config_set_flag(evcfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	uplinkd.base = event_base_new_with_config(evcfg);
	event_config_free(evcfg);
	if (uplinkd.base == NULL)
		uplinkd_fail("event_base_new failed");
	event_set_log_callback(uplinkd_event_log_cb);
	link_dns_init(uplinkd.base, uplinkd.conf.dns_servers);
	cloud_init(uplinkd.conf.datadir);
	tag_init(uplinkd.base);
	if (tagsrc_virtual_init(uplinkd.store, &cause) != 0)
		uplinkd_fail("%s", cause);
	tagsrc_system_init(uplinkd.base, uplinkd.conf.system_tags_interval,
	    uplinkd.conf.datadir);
	if (tagsrc_mqtt_init(uplinkd.base, &uplinkd.conf, &cause) != 0)
		uplinkd_fail("%s", cause);
	remote_set_allow(uplinkd.conf.remote_api_allow);
	if (cloud_saf_init(uplinkd.conf.cache_disks, uplinkd.conf.datadir,
	    uplinkd.conf.cache_sync, uplinkd.conf.cache_commit_ms,
	    &cause) != 0)
		uplinkd_fail("%s", cause);
	if (cloud_mqtt_init(uplinkd.base, uplinkd.store,
	    uplinkd.conf.outbox_messages, uplinkd.conf.outbox_bytes,
	    &cause) != 0)
		uplinkd_fail("%s", cause);
	for (i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		uplinkd.sig[i] = evsignal_new(uplinkd.base, sigs[i],
		    uplinkd_signal_cb, NULL);
		evsignal_add(uplinkd.sig[i], NULL);
	}
	if ((uplinkd.http = http_new(uplinkd.base, &uplinkd.conf,
	    &cause)) == NULL)
		uplinkd_fail("%s", cause);
	uplinkd.lag = event_new(uplinkd.base, -1, EV_PERSIST, uplinkd_lag_cb,
	    NULL);
	uplinkd.lag_last = util_now_ms();
	evtimer_add(uplinkd.lag, &tv);

	log_info("started version=%s pid=%ld datadir=%s", PACKAGE_VERSION,
	    (long)getpid(), uplinkd.conf.datadir);
	uplinkd_ready();
	event_base_dispatch(uplinkd.base);

	http_free(uplinkd.http);
	cloud_mqtt_free();
	tagsrc_mqtt_free();
	tagsrc_system_free();
	tagsrc_virtual_free();
	tag_free();
	api_free();
	/* Let cancelled look-ups finish before their base goes. */
	event_base_loop(uplinkd.base, EVLOOP_NONBLOCK);
	link_dns_free();
	cloud_init(NULL);
	cloud_saf_init(NULL, NULL, 0, 0, NULL);
	remote_set_allow(NULL);
	auth_free();
	store_close(uplinkd.store);
	metrics_free();
	event_free(uplinkd.lag);
	for (i = 0; i < sizeof sigs / sizeof *sigs; i++)
		event_free(uplinkd.sig[i]);
	event_base_free(uplinkd.base);
	unlink(uplinkd.conf.pidfile);
	conf_free(&uplinkd.conf);
	log_info("stopped");
	return (0);
}
