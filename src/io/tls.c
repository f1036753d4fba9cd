/*
 * tls.c - TLS for the client port over OpenSSL memory BIOs (tls.h).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/tls.h"

struct io_tls_ctx {
    SSL_CTX *ctx;
};

struct io_tls {
    SSL *ssl;
    BIO *rbio, *wbio; /* network side: what came in, what goes out */
};

static void ssl_error(char *err, size_t cap, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    snprintf(err, cap, "%s%s%s", what, e ? ": " : "", buf);
    ERR_clear_error();
}

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
    (void)rwflag;
    const char *pass = u;
    int n = (int)strlen(pass);
    if (n >= size) {
        return 0;
    }
    memcpy(buf, pass, (size_t)n);
    return n;
}

/* tls-protocols: "TLSv1.2", "TLSv1.3" or both (Redis's names); older ones are refused. */
static int set_protocols(SSL_CTX *ctx, const char *protos, char *err, size_t cap)
{
    int v12 = strstr(protos, "TLSv1.2") != NULL, v13 = strstr(protos, "TLSv1.3") != NULL;
    if (!v12 && !v13) {
        snprintf(err, cap, "tls-protocols must name TLSv1.2, TLSv1.3 or both (got \"%s\")", protos);
        return 0;
    }
    SSL_CTX_set_min_proto_version(ctx, v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, v13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    return 1;
}

struct io_tls_ctx *io_tls_ctx_new(const struct hy_config *cfg, char *err, size_t cap)
{
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, cap, "tls-port needs tls-cert-file and tls-key-file");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_error(err, cap, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (!set_protocols(ctx, cfg->tls_protocols, err, cap)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (cfg->tls_key_file_pass[0] != '\0') {
        SSL_CTX_set_default_passwd_cb(ctx, pass_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)cfg->tls_key_file_pass);
    }
    char what[600];
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1) {
        snprintf(what, sizeof(what), "tls-cert-file %s", cfg->tls_cert_file);
        ssl_error(err, cap, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "tls-key-file %s (or it does not match the certificate)",
                 cfg->tls_key_file);
        ssl_error(err, cap, what);
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, NULL); /* the passphrase's string may change later */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    int auth = cfg->tls_auth_clients; /* 0 yes, 1 no, 2 optional */
    if (auth != 1) {
        if (cfg->tls_ca_cert_file[0] == '\0') {
            snprintf(err, cap,
                     "tls-auth-clients %s needs tls-ca-cert-file to verify client certificates",
                     auth == 0 ? "yes" : "optional");
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca_cert_file, NULL) != 1) {
            snprintf(what, sizeof(what), "tls-ca-cert-file %s", cfg->tls_ca_cert_file);
            ssl_error(err, cap, what);
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (auth == 0 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    struct io_tls_ctx *x = hy_xcalloc(1, sizeof(*x));
    x->ctx = ctx;
    return x;
}

void io_tls_ctx_free(struct io_tls_ctx *x)
{
    if (x != NULL) {
        SSL_CTX_free(x->ctx);
        hy_free(x);
    }
}

struct io_tls *io_tls_new(struct io_tls_ctx *x)
{
    struct io_tls *t = hy_xcalloc(1, sizeof(*t));
    t->ssl = SSL_new(x->ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    HY_ASSERT(t->ssl != NULL && t->rbio != NULL && t->wbio != NULL);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both now */
    SSL_set_accept_state(t->ssl);
    return t;
}

void io_tls_free(struct io_tls *t)
{
    if (t != NULL) {
        SSL_free(t->ssl);
        hy_free(t);
    }
}

int io_tls_ready(const struct io_tls *t)
{
    return SSL_is_init_finished(t->ssl);
}

static void drain(struct io_tls *t, struct hy_buf *cipher_out)
{
    size_t pending;
    while ((pending = BIO_ctrl_pending(t->wbio)) > 0) {
        uint8_t *p = hy_buf_reserve(cipher_out, pending);
        int n = BIO_read(t->wbio, p, (int)pending);
        if (n <= 0) {
            break;
        }
        cipher_out->len += (size_t)n;
    }
}

int io_tls_feed(struct io_tls *t, const uint8_t *data, size_t len, struct hy_buf *plain_out,
                struct hy_buf *cipher_out, char *err, size_t cap)
{
    while (len > 0) {
        int n = BIO_write(t->rbio, data, (int)(len > (1u << 30) ? 1u << 30 : len));
        if (n <= 0) {
            snprintf(err, cap, "TLS: cannot buffer input");
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    if (!SSL_is_init_finished(t->ssl)) {
        int rc = SSL_do_handshake(t->ssl);
        drain(t, cipher_out); /* handshake records, an alert included */
        if (rc != 1) {
            int e = SSL_get_error(t->ssl, rc);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                return 0;
            }
            ssl_error(err, cap, "TLS handshake failed");
            return -1;
        }
    }
    for (;;) {
        uint8_t *p = hy_buf_reserve(plain_out, 16384);
        int n = SSL_read(t->ssl, p, 16384);
        if (n > 0) {
            plain_out->len += (size_t)n;
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        drain(t, cipher_out); /* e.g. session tickets, key updates */
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            return 0;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            snprintf(err, cap, "TLS: the peer closed the session");
        } else {
            ssl_error(err, cap, "TLS: bad record");
        }
        return -1;
    }
}

int io_tls_write(struct io_tls *t, const uint8_t *data, size_t len, struct hy_buf *cipher_out)
{
    while (len > 0) {
        int n = SSL_write(t->ssl, data, (int)(len > (1u << 30) ? 1u << 30 : len));
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        data += n;
        len -= (size_t)n;
        drain(t, cipher_out);
    }
    return 0;
}
