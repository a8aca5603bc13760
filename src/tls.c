/* SPDX-License-Identifier: ISC */
/*
 * TLS for the HTTPS listener: the server context, and the self-signed
 * certificate made at first start when none is configured (an EC P-256
 * key, ten years, the host name and loopback addresses as alternative
 * names).
 */

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "tls.h"
#include "util.h"
#include "xmalloc.h"

/* The last OpenSSL error as text; static buffer. */
static const char *
tls_error(void)
{
	static char	buf[256];
	unsigned long	e;

	if ((e = ERR_get_error()) == 0)
		return ("unknown TLS error");
	ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	return (buf);
}

/* A server context for cert and key (PEM files); NULL and *cause. */
SSL_CTX *
tls_server_ctx(const char *cert, const char *key, char **cause)
{
	SSL_CTX	*ctx;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		xasprintf(cause, "TLS: %s", tls_error());
		return (NULL);
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		xasprintf(cause, "tls_cert %s: %s", cert, tls_error());
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		xasprintf(cause, "tls_key %s: %s", key, tls_error());
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		xasprintf(cause, "tls_key %s does not match tls_cert %s", key,
		    cert);
		goto fail;
	}
	return (ctx);
fail:
	SSL_CTX_free(ctx);
	return (NULL);
}

/* Add an extension to a certificate. */
static int
tls_add_ext(X509 *x, int nid, const char *value)
{
	X509_EXTENSION	*ext;
	X509V3_CTX	 ctx;
	int		 ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value)) == NULL)
		return (-1);
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return (ok ? 0 : -1);
}

/* Write a PEM object through a callback to path with mode. */
static int
tls_write_pem(const char *path, mode_t mode, EVP_PKEY *pkey, X509 *x,
    char **cause)
{
	BIO	*b;
	char	*data;
	long	 len;
	int	 rc;

	if ((b = BIO_new(BIO_s_mem())) == NULL)
		fatalx("BIO_new failed");
	if (pkey != NULL)
		rc = PEM_write_bio_PrivateKey(b, pkey, NULL, NULL, 0, NULL,
		    NULL);
	else
		rc = PEM_write_bio_X509(b, x);
	if (rc != 1) {
		xasprintf(cause, "%s: %s", path, tls_error());
		BIO_free(b);
		return (-1);
	}
	len = BIO_get_mem_data(b, &data);
	rc = util_write_file(path, data, len, mode, cause);
	BIO_free(b);
	return (rc);
}

/* Make a self-signed certificate and key at cert and key. */
int
tls_selfsigned(const char *cert, const char *key, char **cause)
{
	EVP_PKEY	*pkey;
	X509		*x;
	X509_NAME	*name;
	char		 host[256], san[600];
	unsigned char	 serial[16];
	BIGNUM		*bn;
	int		 rc = -1;

	if (gethostname(host, sizeof host) != 0 || *host == '\0')
		snprintf(host, sizeof host, "uplinkd");
	host[sizeof host - 1] = '\0';
	if ((pkey = EVP_EC_gen("P-256")) == NULL) {
		xasprintf(cause, "TLS key: %s", tls_error());
		return (-1);
	}
	if ((x = X509_new()) == NULL)
		fatalx("X509_new failed");
	X509_set_version(x, 2);
	RAND_bytes(serial, sizeof serial);
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 10L * 366 * 24 * 3600);
	X509_set_pubkey(x, pkey);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
	    (const unsigned char *)"uplinkd", -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)host, -1, -1, 0);
	X509_set_issuer_name(x, name);
	snprintf(san, sizeof san, "DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1",
	    host);
	if (tls_add_ext(x, NID_subject_alt_name, san) != 0 ||
	    tls_add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    tls_add_ext(x, NID_ext_key_usage, "serverAuth") != 0) {
		xasprintf(cause, "TLS certificate: %s", tls_error());
		goto out;
	}
	if (X509_sign(x, pkey, EVP_sha256()) == 0) {
		xasprintf(cause, "TLS certificate: %s", tls_error());
		goto out;
	}
	if (tls_write_pem(key, 0600, pkey, NULL, cause) != 0 ||
	    tls_write_pem(cert, 0644, NULL, x, cause) != 0)
		goto out;
	log_info("tls: made a self-signed certificate cn=%s file=%s", host,
	    cert);
	rc = 0;
out:
	X509_free(x);
	EVP_PKEY_free(pkey);
	return (rc);
}
