/* SPDX-License-Identifier: ISC */
#ifndef TAGSRC_MQTT_H
#define TAGSRC_MQTT_H

struct conf;
struct event_base;

int	tagsrc_mqtt_init(struct event_base *, const struct conf *, char **);
int	tagsrc_mqtt_reconfigure(const struct conf *, char **);
void	tagsrc_mqtt_free(void);

#endif
