/* SPDX-License-Identifier: ISC */
#ifndef TLS_H
#define TLS_H

#include <openssl/ssl.h>

SSL_CTX	*tls_server_ctx(const char *, const char *, char **);
int	 tls_selfsigned(const char *, const char *, char **);

#endif
