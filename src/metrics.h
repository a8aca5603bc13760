/* SPDX-License-Identifier: ISC */
#ifndef METRICS_H
#define METRICS_H

#include <stdint.h>
#include <stdio.h>

typedef void (*metrics_cb)(FILE *);

void	 metrics_init(void);
void	 metrics_free(void);
void	 metrics_register(metrics_cb);
void	 metrics_http(const char *, int, int);
void	 metrics_loop_lag(uint64_t);
char	*metrics_render(size_t *);

#endif
