/* SPDX-License-Identifier: ISC */

/*
 * Every page the store-and-forward cache writes ends in a CRC-32 of its
 * bytes (big-endian), added and checked by Tokyo Cabinet's codec hooks.
 * The library trusts the sizes it reads inside a page, and on a page
 * damaged in the middle it can ask for gigabytes and exit; a page whose
 * sum does not match is an error it reports instead.  bench/cache-tc
 * builds this file too, so that its baseline pays the same sums.
 */

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "pagesum.h"

void *
pagesum_enc(const void *ptr, int size, int *sp,
    __attribute__((unused)) void *op)
{
	unsigned char	*out;
	uLong		 sum;

	if (size < 0 || size > INT_MAX - 5 ||
	    (out = malloc((size_t)size + 5)) == NULL)
		return (NULL);
	memcpy(out, ptr, size);
	sum = crc32(0L, ptr, (uInt)size);
	out[size] = sum >> 24 & 0xff;
	out[size + 1] = sum >> 16 & 0xff;
	out[size + 2] = sum >> 8 & 0xff;
	out[size + 3] = sum & 0xff;
	out[size + 4] = '\0';
	*sp = size + 4;
	return (out);
}

void *
pagesum_dec(const void *ptr, int size, int *sp,
    __attribute__((unused)) void *op)
{
	const unsigned char	*in = ptr;
	unsigned char		*out;
	uLong			 sum;

	if (size < 4)
		return (NULL);
	size -= 4;
	sum = (uLong)in[size] << 24 | (uLong)in[size + 1] << 16 |
	    (uLong)in[size + 2] << 8 | in[size + 3];
	if (crc32(0L, ptr, (uInt)size) != sum ||
	    (out = malloc((size_t)size + 1)) == NULL)
		return (NULL);
	memcpy(out, ptr, size);
	out[size] = '\0';		/* as the library's own codecs do */
	*sp = size;
	return (out);
}
