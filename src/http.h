/* SPDX-License-Identifier: ISC */
#ifndef HTTP_H
#define HTTP_H

struct conf;
struct event_base;
struct http;

struct http	*http_new(struct event_base *, const struct conf *, char **);
int		 http_reconfigure(struct http *, const struct conf *, char **);
void		 http_stop(struct http *);
void		 http_free(struct http *);
unsigned int	 http_connections(const struct http *);

#endif
