/* SPDX-License-Identifier: ISC */

/*
 * The storage limit of bench/cache: how fast Tokyo Cabinet alone takes
 * the records uplinkd's cache writes, in one thread doing nothing else.
 *
 * usage: cache-tc [-b records] [-d seconds] [-m commit_ms] [-s] path
 *            payloadfile topic
 *
 * Opens (truncating) a B+tree at path tuned as src/cache.c tunes the
 * cache of bench/cache's 4096 MB cap (2048 members a leaf, 256 a
 * non-leaf, 262139 buckets, 2^8 alignment, 2^10 free blocks, large;
 * leaves of 512 kB at most, 64 leaf and 64 non-leaf pages cached and
 * let go after every commit, a CRC-32 at the end of every page, from
 * src/pagesum.c), with transactions synchronised to
 * disk unless -s (uplinkd's cache_sync, yes by default).  It stores the
 * first line of payloadfile, as the cache stores a message (a 16-byte
 * header: version, QoS, retain, a pad byte, the topic length and the
 * enqueue time, then topic and payload), under 8-byte big-endian
 * sequence numbers, as fast as it can, in one transaction per commit
 * window (-m, default 100 ms, uplinkd's cache_commit_ms default) or
 * of -b records (default 32768, what src/cache.c writes in one
 * transaction at most; 0: no bound), whichever comes first, one after
 * the other, for -d seconds (default 10).  Prints one line of
 * key=value pairs: records, commits, seconds, the rate, the bytes of a
 * record and the size of the file.
 */

#include <sys/stat.h>

#include <err.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tcutil.h>
#include <tcbdb.h>
#include "bench.h"
#include "pagesum.h"

static unsigned long
tc_number(const char *s, const char *what)
{
	unsigned long long	v;

	if (bench_parse(s, &v) == -1 || v == 0 || v > 86400000)
		errx(2, "%s: not a positive number: %s", what, s);
	return (v);
}

int
main(int argc, char **argv)
{
	TCBDB		*bdb;
	struct stat	 st;
	unsigned char	 k[8], *v;
	char		*line = NULL;
	size_t		 cap = 0, tlen, vlen;
	ssize_t		 plen;
	unsigned long	 seconds = 10, commit_ms = 100, batch = 32768, n;
	uint64_t	 seq = 1, commits = 0, enq, s;
	double		 start, end, window, now;
	int		 ch, i, sync = 1, omode;
	FILE		*f;

	while ((ch = getopt(argc, argv, "b:d:m:s")) != -1) {
		switch (ch) {
		case 'b':
			batch = strcmp(optarg, "0") == 0 ? 0 :
			    tc_number(optarg, "-b");
			break;
		case 'd':
			seconds = tc_number(optarg, "-d");
			break;
		case 'm':
			commit_ms = tc_number(optarg, "-m");
			break;
		case 's':
			sync = 0;
			break;
		default:
			fprintf(stderr, "usage: cache-tc [-b records] "
			    "[-d seconds] [-m commit_ms] [-s] path payloadfile "
			    "topic\n");
			return (2);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc != 3)
		errx(2, "usage: cache-tc [-b records] [-d seconds] "
		    "[-m commit_ms] [-s] path payloadfile topic");

	if ((f = fopen(argv[1], "r")) == NULL)
		err(1, "%s", argv[1]);
	if ((plen = getline(&line, &cap, f)) <= 0)
		errx(1, "%s: no payload", argv[1]);
	fclose(f);
	if (line[plen - 1] == '\n')
		line[--plen] = '\0';
	tlen = strlen(argv[2]);
	vlen = 16 + tlen + plen;
	if ((v = malloc(vlen)) == NULL)
		err(1, "malloc");
	enq = bench_wall_us();
	v[0] = 1;
	v[1] = 1;
	v[2] = 0;
	v[3] = 0;
	for (i = 0; i < 4; i++)
		v[4 + i] = tlen >> (24 - 8 * i);
	for (i = 0; i < 8; i++)
		v[8 + i] = enq >> (56 - 8 * i);
	memcpy(v + 16, argv[2], tlen);
	memcpy(v + 16 + tlen, line, plen);

	if ((bdb = tcbdbnew()) == NULL)
		errx(1, "tcbdbnew failed");
	/* As src/cache.c tunes the cache of bench/cache's 4096 MB cap. */
	tcbdbtune(bdb, 2048, 256, 262139, 8, 10, BDBTLARGE | BDBTEXCODEC);
	tcbdbsetcodecfunc(bdb, pagesum_enc, NULL, pagesum_dec, NULL);
	tcbdbsetcache(bdb, 64, 64);
	tcbdbsetlsmax(bdb, 512u << 10);
	omode = BDBOWRITER | BDBOCREAT | BDBOTRUNC | (sync ? BDBOTSYNC : 0);
	if (!tcbdbopen(bdb, argv[0], omode))
		errx(1, "%s: %s", argv[0], tcbdberrmsg(tcbdbecode(bdb)));

	start = bench_mono();
	end = start + seconds;
	do {
		if (!tcbdbtranbegin(bdb))
			errx(1, "begin: %s", tcbdberrmsg(tcbdbecode(bdb)));
		window = bench_mono() + commit_ms / 1000.0;
		n = 0;
		do {
			/* The clock is read every 256 records. */
			for (i = 0; i < 256; i++, seq++, n++) {
				for (s = seq, ch = 7; ch >= 0; ch--) {
					k[ch] = s & 0xff;
					s >>= 8;
				}
				if (!tcbdbput(bdb, k, 8, v, vlen))
					errx(1, "put: %s",
					    tcbdberrmsg(tcbdbecode(bdb)));
			}
			now = bench_mono();
		} while (now < window && now < end && (batch == 0 ||
		    n + 256 <= batch));
		if (!tcbdbtrancommit(bdb))
			errx(1, "commit: %s", tcbdberrmsg(tcbdbecode(bdb)));
		tcbdbcacheclear(bdb);
		commits++;
	} while ((now = bench_mono()) < end);
	if (!tcbdbclose(bdb))
		errx(1, "close: %s", tcbdberrmsg(tcbdbecode(bdb)));
	tcbdbdel(bdb);
	if (stat(argv[0], &st) == -1)
		err(1, "%s", argv[0]);
	printf("records=%" PRIu64 " commits=%" PRIu64 " seconds=%.3f "
	    "records_per_s=%.0f record_bytes=%zu file_bytes=%lld\n", seq - 1,
	    commits, now - start, (seq - 1) / (now - start), vlen,
	    (long long)st.st_blocks * 512);
	free(v);
	free(line);
	return (0);
}
