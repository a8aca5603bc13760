/* SPDX-License-Identifier: ISC */
#ifndef UPLINKD_H
#define UPLINKD_H

#include <stdint.h>

#include "config.h"

uint64_t	uplinkd_uptime(void);
struct event_base *uplinkd_base(void);

#endif
