/* SPDX-License-Identifier: ISC */
#ifndef PAGESUM_H
#define PAGESUM_H

/*
 * Page sums for Tokyo Cabinet files (pagesum.c): codec functions
 * (TCCODEC, for tcbdbsetcodecfunc() with BDBTEXCODEC) that end every
 * page with a CRC-32 of its bytes and refuse a page whose sum does not
 * match.  The results are malloc()ed, as the library frees them.
 */
void	*pagesum_enc(const void *, int, int *, void *);
void	*pagesum_dec(const void *, int, int *, void *);

#endif
