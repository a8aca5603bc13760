/* SPDX-License-Identifier: ISC */
#ifndef TAGSRC_VIRTUAL_H
#define TAGSRC_VIRTUAL_H

struct json;
struct store;

int		 tagsrc_virtual_init(struct store *, char **);
void		 tagsrc_virtual_free(void);
int		 tagsrc_virtual_add(struct json *, int, struct json **, int *,
		    char **);
int		 tagsrc_virtual_delete(struct json *, int *, char **);
struct json	*tagsrc_virtual_list(void);

#endif
