/* SPDX-License-Identifier: ISC */
/*
 * Resources about the gateway itself, for operators and for the clouds'
 * twins: /device/general (the host name; the model, serial number and
 * description an operator sets, kept in the configuration store as the
 * singleton document "device.general"; the version, the uptime and the
 * kernel), /device/ethernets (interfaces and addresses from getifaddrs),
 * /device/time and /system/status (load, memory, disk, uptime, and the
 * daemon's own memory and age).
 *
 * Twins poll these, so every reading is taken fresh from /proc and a few
 * system calls into buffers on the stack; only the answer is allocated.
 * A figure that cannot be read is null (logged the first time), and the
 * rest of the answer stands.  The host name is reported, never set.
 */

#include <sys/types.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netpacket/packet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "json.h"
#include "log.h"
#include "store.h"
#include "uplinkd.h"
#include "util.h"

#define API_DEVICE_DOC		"device.general"
#define API_DEVICE_DISK		"/"
#define API_DEVICE_BUF		4096	/* /proc/meminfo is about 1.5 KB */

/* Figures whose failure has been logged, one bit each. */
#define API_DEVICE_W_HOST	0x01
#define API_DEVICE_W_UNAME	0x02
#define API_DEVICE_W_UPTIME	0x04
#define API_DEVICE_W_LOAD	0x08
#define API_DEVICE_W_MEM	0x10
#define API_DEVICE_W_DISK	0x20
#define API_DEVICE_W_RSS	0x40
#define API_DEVICE_W_IF		0x80

static unsigned int	api_device_warned;

static void	api_device_general_get(struct api_req *, struct api_resp *);
static void	api_device_general_put(struct api_req *, struct api_resp *);
static void	api_device_ethernets(struct api_req *, struct api_resp *);
static void	api_device_time(struct api_req *, struct api_resp *);
static void	api_device_status(struct api_req *, struct api_resp *);

const struct api_route api_device_routes[] = {
	{ API_GET, "/device/general", 0, api_device_general_get },
	{ API_PUT, "/device/general", API_BODY, api_device_general_put },
	{ API_GET, "/device/ethernets", 0, api_device_ethernets },
	{ API_GET, "/device/time", 0, api_device_time },
	{ API_GET, "/system/status", 0, api_device_status },
	{ 0, NULL, 0, NULL }
};

/* The writable fields; the others of the GET view are dropped. */
static const struct json_field api_device_general_schema[] = {
	{ "hostName", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "model", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "serialNumber", JF_STRING, 0, 0, 255, NULL, "\"\"", NULL, NULL },
	{ "description", JF_STRING, 0, 0, 1024, NULL, "\"\"", NULL, NULL },
	{ "version", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "uptimeSec", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ "kernel", JF_ANY, JF_READONLY, 0, 0, NULL, NULL, NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL, NULL, NULL }
};

/* Log that a figure cannot be had, the first time only; what is borrowed. */
static void
api_device_warn(unsigned int bit, const char *what, int sys)
{
	if (api_device_warned & bit)
		return;
	api_device_warned |= bit;
	if (sys)
		log_warn("device: cannot read %s; reported as null", what);
	else
		log_warnx("device: cannot parse %s; reported as null", what);
}

/* Read a small file into buf (borrowed), NUL-terminated; 0, or -1. */
static int
api_device_read(const char *path, char *buf, size_t size)
{
	size_t	len = 0;
	ssize_t	r;
	int	fd, saved;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return (-1);
	while (len < size - 1) {
		if ((r = read(fd, buf + len, size - 1 - len)) == -1) {
			if (errno == EINTR)
				continue;
			saved = errno;
			close(fd);
			errno = saved;
			return (-1);
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	return (0);
}

/* Seconds since the system booted, from /proc/uptime; 0, or -1. */
static int
api_device_uptime(uint64_t *sec)
{
	char	buf[128], *end;
	double	d;

	if (api_device_read("/proc/uptime", buf, sizeof buf) != 0) {
		api_device_warn(API_DEVICE_W_UPTIME, "/proc/uptime", 1);
		return (-1);
	}
	d = strtod(buf, &end);
	if (end == buf || !(d >= 0)) {
		api_device_warn(API_DEVICE_W_UPTIME, "/proc/uptime", 0);
		return (-1);
	}
	*sec = (uint64_t)d;
	return (0);
}

/* An unsigned figure, or null if it could not be had; caller owns it. */
static struct json *
api_device_uint(int ok, uint64_t v)
{
	return (ok ? json_new_uint(v) : json_new_null());
}

/* The stored writable fields with defaults filled; caller frees. */
static struct json *
api_device_stored(void)
{
	struct json	*doc;
	char		*cause;

	if ((doc = store_get_doc(api_store(), API_DEVICE_DOC)) == NULL)
		doc = json_new_object();
	if (json_validate(doc, api_device_general_schema, &cause) != 0) {
		log_warnx("device: stored %s ignored: %s", API_DEVICE_DOC,
		    cause);
		free(cause);
		json_free(doc);
		doc = json_new_object();
		if (json_validate(doc, api_device_general_schema, &cause) != 0)
			fatalx("device: defaults: %s", cause);
	}
	return (doc);
}

/* The GET view of /device/general; caller frees. */
static struct json *
api_device_general_view(void)
{
	static const char *const	 fields[] = {
		"model", "serialNumber", "description"
	};
	struct json			*doc, *stored, *v;
	struct utsname			 u;
	char				 host[HOST_NAME_MAX + 1];
	uint64_t			 up = 0;
	size_t				 i;
	int				 ok;

	doc = json_new_object();
	if (gethostname(host, sizeof host) == 0) {
		host[sizeof host - 1] = '\0';
		json_set(doc, "hostName", json_new_string(host));
	} else {
		api_device_warn(API_DEVICE_W_HOST, "the host name", 1);
		json_set(doc, "hostName", json_new_null());
	}
	stored = api_device_stored();
	for (i = 0; i < sizeof fields / sizeof *fields; i++) {
		if ((v = json_take(stored, fields[i])) == NULL)
			v = json_new_string("");
		json_set(doc, fields[i], v);
	}
	json_free(stored);
	json_set(doc, "version", json_new_string(PACKAGE_VERSION));
	ok = api_device_uptime(&up) == 0;
	json_set(doc, "uptimeSec", api_device_uint(ok, up));
	if (uname(&u) == 0)
		json_set(doc, "kernel", json_new_stringf("%s %s %s", u.sysname,
		    u.release, u.machine));
	else {
		api_device_warn(API_DEVICE_W_UNAME, "uname", 1);
		json_set(doc, "kernel", json_new_null());
	}
	return (doc);
}

/* GET /device/general -> {"data":{"hostName",...,"kernel"}} (fresh view) */
static void
api_device_general_get(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	api_data(resp, api_device_general_view());
}

/*
 * PUT /device/general {model, serialNumber, description}: merged over the
 * stored fields; read-only and unknown members are dropped.  Answers the
 * new GET view.
 */
static void
api_device_general_put(struct api_req *req, struct api_resp *resp)
{
	struct json	*doc;
	char		*cause;

	if (json_type(req->json) != JSON_OBJECT) {
		api_error(req, resp, 400, "body: must be %s, not %s",
		    json_type_name(JSON_OBJECT),
		    json_type_name(json_type(req->json)));
		return;
	}
	doc = api_device_stored();
	json_merge(doc, req->json);
	if (json_validate(doc, api_device_general_schema, &cause) != 0) {
		api_error(req, resp, 400, "%s", cause);
		free(cause);
		json_free(doc);
		return;
	}
	if (store_put_doc(api_store(), API_DEVICE_DOC, doc, &cause) != 0) {
		log_warnx("device: cannot store %s: %s", API_DEVICE_DOC,
		    cause);
		api_error(req, resp, 500, "%s", cause);
		free(cause);
		json_free(doc);
		return;
	}
	json_free(doc);
	log_info("device: general settings changed");
	api_data(resp, api_device_general_view());
}

/* Set the "mac" of entry e (borrowed) from an AF_PACKET address. */
static void
api_device_mac(struct json *e, const struct sockaddr *sa)
{
	struct sockaddr_ll	sll;
	char			buf[3 * sizeof sll.sll_addr];
	size_t			i, n, len = 0;

	memcpy(&sll, sa, sizeof sll);
	if ((n = sll.sll_halen) > sizeof sll.sll_addr)
		n = sizeof sll.sll_addr;
	if (n == 0)
		return;
	for (i = 0; i < n; i++)
		len += snprintf(buf + len, sizeof buf - len, "%s%02x",
		    i == 0 ? "" : ":", sll.sll_addr[i]);
	json_set(e, "mac", json_new_string(buf));
}

/* Add an IPv4 address {address, netmask} to entry e (borrowed). */
static void
api_device_inet(struct json *e, const struct ifaddrs *ifa)
{
	struct sockaddr_in	sin;
	char			addr[INET_ADDRSTRLEN], mask[INET_ADDRSTRLEN];
	struct json		*a;

	memcpy(&sin, ifa->ifa_addr, sizeof sin);
	if (inet_ntop(AF_INET, &sin.sin_addr, addr, sizeof addr) == NULL)
		return;
	mask[0] = '\0';
	if (ifa->ifa_netmask != NULL) {
		memcpy(&sin, ifa->ifa_netmask, sizeof sin);
		if (inet_ntop(AF_INET, &sin.sin_addr, mask, sizeof mask) ==
		    NULL)
			mask[0] = '\0';
	}
	a = json_new_object();
	json_set(a, "address", json_new_string(addr));
	json_set(a, "netmask", json_new_string(mask));
	json_array_push(json_get(e, "ipv4"), a);
}

/* Add an IPv6 address {address, prefixLength} to entry e (borrowed). */
static void
api_device_inet6(struct json *e, const struct ifaddrs *ifa)
{
	struct sockaddr_in6	sin6;
	char			addr[INET6_ADDRSTRLEN];
	struct json		*a;
	unsigned int		prefix = 0;
	size_t			i;

	memcpy(&sin6, ifa->ifa_addr, sizeof sin6);
	if (inet_ntop(AF_INET6, &sin6.sin6_addr, addr, sizeof addr) == NULL)
		return;
	if (ifa->ifa_netmask != NULL) {
		memcpy(&sin6, ifa->ifa_netmask, sizeof sin6);
		for (i = 0; i < sizeof sin6.sin6_addr.s6_addr; i++)
			prefix += (unsigned int)__builtin_popcount(
			    sin6.sin6_addr.s6_addr[i]);
	}
	a = json_new_object();
	json_set(a, "address", json_new_string(addr));
	json_set(a, "prefixLength", json_new_uint(prefix));
	json_array_push(json_get(e, "ipv6"), a);
}

/*
 * The entry of an address's interface in list (borrowed), added with its
 * flags and MTU (s: a socket for ioctl, or -1) when first seen.  An alias
 * label ("eth0:1") is its interface.
 */
static struct json *
api_device_if(struct json *list, const struct ifaddrs *ifa, int s)
{
	char		 name[IFNAMSIZ];
	struct ifreq	 ifr;
	struct json	*e;
	size_t		 i, len;

	if ((len = strcspn(ifa->ifa_name, ":")) >= sizeof name)
		len = sizeof name - 1;
	memcpy(name, ifa->ifa_name, len);
	name[len] = '\0';
	for (i = 0; i < json_array_size(list); i++) {
		e = json_array_get(list, i);
		if (strcmp(json_get_string(e, "name"), name) == 0)
			return (e);
	}
	e = json_new_object();
	json_set(e, "name", json_new_string(name));
	json_set(e, "mac", json_new_string(""));
	json_set(e, "up", json_new_bool((ifa->ifa_flags & IFF_UP) != 0));
	json_set(e, "running",
	    json_new_bool((ifa->ifa_flags & IFF_RUNNING) != 0));
	json_set(e, "loopback",
	    json_new_bool((ifa->ifa_flags & IFF_LOOPBACK) != 0));
	memset(&ifr, 0, sizeof ifr);
	memcpy(ifr.ifr_name, name, len + 1);
	if (s != -1 && ioctl(s, SIOCGIFMTU, &ifr) == 0)
		json_set(e, "mtu", json_new_int(ifr.ifr_mtu));
	else {
		api_device_warn(API_DEVICE_W_IF, "an interface's MTU", 1);
		json_set(e, "mtu", json_new_null());
	}
	json_set(e, "ipv4", json_new_array());
	json_set(e, "ipv6", json_new_array());
	json_array_push(list, e);
	return (e);
}

/* GET /device/ethernets -> {"data":[{"name",...,"ipv4","ipv6"}]} */
static void
api_device_ethernets(struct api_req *req, struct api_resp *resp)
{
	struct ifaddrs	*ifas, *ifa;
	struct json	*list, *e;
	int		 s;

	if (getifaddrs(&ifas) == -1) {
		log_warn("device: getifaddrs");
		api_error(req, resp, 500, "getifaddrs: %s", strerror(errno));
		return;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	list = json_new_array();
	for (ifa = ifas; ifa != NULL; ifa = ifa->ifa_next) {
		if (ifa->ifa_name == NULL)
			continue;
		e = api_device_if(list, ifa, s);
		if (ifa->ifa_addr == NULL)
			continue;
		switch (ifa->ifa_addr->sa_family) {
		case AF_PACKET:
			api_device_mac(e, ifa->ifa_addr);
			break;
		case AF_INET:
			api_device_inet(e, ifa);
			break;
		case AF_INET6:
			api_device_inet6(e, ifa);
			break;
		}
	}
	if (s != -1)
		close(s);
	freeifaddrs(ifas);
	api_data(resp, list);
}

/* The zone name in a path or TZ value (".../zoneinfo/Europe/Paris"), in s. */
static const char *
api_device_zone(const char *s)
{
	const char	*p;

	if (*s == ':')
		s++;
	if ((p = strstr(s, "zoneinfo/")) != NULL)
		s = p + strlen("zoneinfo/");
	return (s);
}

/*
 * The name of the local time zone: TZ, else /etc/timezone, else what
 * /etc/localtime links to, else "UTC"; caller owns it.
 */
static struct json *
api_device_timezone(void)
{
	const char	*tz;
	char		 file[256], link[PATH_MAX];
	ssize_t		 n;

	if ((tz = getenv("TZ")) != NULL && *api_device_zone(tz) != '\0')
		return (json_new_string(api_device_zone(tz)));
	if (api_device_read("/etc/timezone", file, sizeof file) == 0) {
		file[strcspn(file, " \t\r\n")] = '\0';
		if (file[0] != '\0')
			return (json_new_string(file));
	}
	if ((n = readlink("/etc/localtime", link, sizeof link - 1)) > 0) {
		link[n] = '\0';
		if (strstr(link, "zoneinfo/") != NULL &&
		    *api_device_zone(link) != '\0')
			return (json_new_string(api_device_zone(link)));
	}
	return (json_new_string("UTC"));
}

/* GET /device/time -> {"data":{"time","timezone","epochMs"}} */
static void
api_device_time(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	struct json	*data;
	char		 iso[64];
	int64_t		 us;

	us = util_wall_us();
	util_iso8601(iso, sizeof iso, us);
	data = json_new_object();
	json_set(data, "time", json_new_string(iso));
	json_set(data, "timezone", api_device_timezone());
	json_set(data, "epochMs", json_new_int(us / 1000));
	api_data(resp, data);
}

/*
 * The values in bytes of "Key:  N kB" lines of a /proc file read into buf
 * (edited); a key not found leaves its value alone.
 */
static void
api_device_kb(char *buf, const char *const *keys, uint64_t *v, size_t n)
{
	char			*line, *next, *colon, *end;
	unsigned long long	 u;
	size_t			 i;

	for (line = buf; line != NULL && *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if ((colon = strchr(line, ':')) == NULL)
			continue;
		*colon = '\0';
		for (i = 0; i < n; i++) {
			if (strcmp(line, keys[i]) != 0)
				continue;
			errno = 0;
			u = strtoull(colon + 1, &end, 10);
			if (end != colon + 1 && errno == 0)
				v[i] = u * 1024;
			break;
		}
	}
}

/* {"total","used","free","available"} of /proc/meminfo or null; caller owns */
static struct json *
api_device_memory(void)
{
	static const char *const	 keys[] = {
		"MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached"
	};
	char				 buf[API_DEVICE_BUF];
	uint64_t			 v[5] = {
		UINT64_MAX, UINT64_MAX, UINT64_MAX, 0, 0
	};
	struct json			*m;

	if (api_device_read("/proc/meminfo", buf, sizeof buf) != 0) {
		api_device_warn(API_DEVICE_W_MEM, "/proc/meminfo", 1);
		return (json_new_null());
	}
	api_device_kb(buf, keys, v, 5);
	if (v[0] == UINT64_MAX || v[1] == UINT64_MAX) {
		api_device_warn(API_DEVICE_W_MEM, "/proc/meminfo", 0);
		return (json_new_null());
	}
	if (v[2] == UINT64_MAX)		/* before Linux 3.14 */
		v[2] = v[1] + v[3] + v[4];
	if (v[2] > v[0])
		v[2] = v[0];
	if (v[1] > v[0])
		v[1] = v[0];
	m = json_new_object();
	json_set(m, "total", json_new_uint(v[0]));
	json_set(m, "used", json_new_uint(v[0] - v[2]));
	json_set(m, "free", json_new_uint(v[1]));
	json_set(m, "available", json_new_uint(v[2]));
	return (m);
}

/* {"path","total","used","free"} of path's file system or null; caller owns */
static struct json *
api_device_disk(const char *path)
{
	struct statvfs	 sv;
	uint64_t	 bsize;
	struct json	*d;

	if (statvfs(path, &sv) == -1) {
		api_device_warn(API_DEVICE_W_DISK, path, 1);
		return (json_new_null());
	}
	bsize = sv.f_frsize != 0 ? sv.f_frsize : sv.f_bsize;
	d = json_new_object();
	json_set(d, "path", json_new_string(path));
	json_set(d, "total", json_new_uint((uint64_t)sv.f_blocks * bsize));
	json_set(d, "used", json_new_uint(sv.f_blocks > sv.f_bfree ?
	    (uint64_t)(sv.f_blocks - sv.f_bfree) * bsize : 0));
	json_set(d, "free", json_new_uint((uint64_t)sv.f_bavail * bsize));
	return (d);
}

/* [1m, 5m, 15m] from /proc/loadavg, or null; caller owns it. */
static struct json *
api_device_load(void)
{
	char		 buf[256];
	double		 l[3];
	struct json	*a;
	size_t		 i;

	if (api_device_read("/proc/loadavg", buf, sizeof buf) != 0) {
		api_device_warn(API_DEVICE_W_LOAD, "/proc/loadavg", 1);
		return (json_new_null());
	}
	if (sscanf(buf, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3) {
		api_device_warn(API_DEVICE_W_LOAD, "/proc/loadavg", 0);
		return (json_new_null());
	}
	a = json_new_array();
	for (i = 0; i < 3; i++)
		json_array_push(a, json_new_double(l[i]));
	return (a);
}

/* Resident memory of this process, from /proc/self/statm; 0, or -1. */
static int
api_device_rss(uint64_t *bytes)
{
	char		buf[256];
	uint64_t	pages;
	long		pagesize;

	if (api_device_read("/proc/self/statm", buf, sizeof buf) != 0) {
		api_device_warn(API_DEVICE_W_RSS, "/proc/self/statm", 1);
		return (-1);
	}
	if (sscanf(buf, "%*u %" SCNu64, &pages) != 1) {
		api_device_warn(API_DEVICE_W_RSS, "/proc/self/statm", 0);
		return (-1);
	}
	if ((pagesize = sysconf(_SC_PAGESIZE)) <= 0)
		pagesize = 4096;
	*bytes = pages * (uint64_t)pagesize;
	return (0);
}

/*
 * GET /system/status -> {"data":{"loadAverage","memory","disk",
 * "uptimeSec","uplinkd":{"rssBytes","uptimeSec"}}}
 */
static void
api_device_status(__attribute__((unused)) struct api_req *req,
    struct api_resp *resp)
{
	struct json	*data, *self;
	uint64_t	 v = 0;
	int		 ok;

	data = json_new_object();
	json_set(data, "loadAverage", api_device_load());
	json_set(data, "memory", api_device_memory());
	json_set(data, "disk", api_device_disk(API_DEVICE_DISK));
	ok = api_device_uptime(&v) == 0;
	json_set(data, "uptimeSec", api_device_uint(ok, v));
	self = json_new_object();
	ok = api_device_rss(&v) == 0;
	json_set(self, "rssBytes", api_device_uint(ok, v));
	json_set(self, "uptimeSec", json_new_uint(uplinkd_uptime()));
	json_set(data, "uplinkd", self);
	api_data(resp, data);
}
