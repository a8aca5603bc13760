/* SPDX-License-Identifier: ISC */
/*
 * A small TAP producer for the C unit tests.  Each test program calls
 * tap_plan() or ends with tap_done(); every check prints one "ok" or
 * "not ok" line, and a failed check prints what it got on a "#" line.
 */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <string.h>

static int	tap_n;
static int	tap_failed;

static inline void
tap_plan(int n)
{
	printf("1..%d\n", n);
}

static inline int
tap_ok(int cond, const char *name)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, name);
	fflush(stdout);
	return (cond);
}

static inline int
tap_is_int(long long got, long long want, const char *name)
{
	if (!tap_ok(got == want, name))
		printf("#   got %lld, want %lld\n", got, want);
	return (got == want);
}

static inline int
tap_is_str(const char *got, const char *want, const char *name)
{
	int	same;

	same = (got == NULL && want == NULL) ||
	    (got != NULL && want != NULL && strcmp(got, want) == 0);
	if (!tap_ok(same, name))
		printf("#   got \"%s\", want \"%s\"\n", got ? got : "(null)",
		    want ? want : "(null)");
	return (same);
}

/* Print the plan at the end; exit status 1 if anything failed. */
static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return (tap_failed != 0);
}

#endif
