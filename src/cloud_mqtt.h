/* SPDX-License-Identifier: ISC */
#ifndef CLOUD_MQTT_H
#define CLOUD_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "json.h"

struct cloud_groups;
struct event_base;
struct multipart;
struct store;

extern const struct json_field cloud_mqtt_schema[];

int		 cloud_mqtt_init(struct event_base *, struct store *, size_t,
		    size_t, char **);
void		 cloud_mqtt_free(void);
struct json	*cloud_mqtt_list(void);
struct json	*cloud_mqtt_get(uint64_t);
struct cloud_groups *cloud_mqtt_groups(uint64_t);
int		 cloud_mqtt_add(struct json *, const struct multipart *,
		    struct json **, char **);
int		 cloud_mqtt_update(uint64_t, struct json *,
		    const struct multipart *, struct json **, int *, char **);
int		 cloud_mqtt_delete(uint64_t, char **);
int		 cloud_mqtt_clear_certs(uint64_t, struct json **, int *,
		    char **);
struct json	*cloud_mqtt_saf_get(uint64_t);
int		 cloud_mqtt_saf_put(uint64_t, struct json *, struct json **,
		    int *, char **);

#endif
