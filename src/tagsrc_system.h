/* SPDX-License-Identifier: ISC */
#ifndef TAGSRC_SYSTEM_H
#define TAGSRC_SYSTEM_H

struct event_base;

void	tagsrc_system_init(struct event_base *, unsigned int, const char *);
void	tagsrc_system_free(void);

#endif
