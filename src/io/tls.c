/*
 * tls.c - TLS for the client and peer ports over OpenSSL memory BIOs (tls.h).
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/assert.h"
#include "io/tls.h"

struct io_tls_ctx {
    SSL_CTX *ctx;    /* accepting */
    SSL_CTX *client; /* dialling (the peer port's contexts only), else NULL */
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

/* tls-ciphers (TLS 1.2), tls-ciphersuites (TLS 1.3), tls-prefer-server-ciphers. */
static int set_ciphers(SSL_CTX *ctx, const struct hy_config *cfg, char *err, size_t cap)
{
    if (cfg->tls_ciphers[0] != '\0' && SSL_CTX_set_cipher_list(ctx, cfg->tls_ciphers) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "tls-ciphers \"%s\" names no usable cipher", cfg->tls_ciphers);
        ssl_error(err, cap, what);
        return 0;
    }
    if (cfg->tls_ciphersuites[0] != '\0' &&
        SSL_CTX_set_ciphersuites(ctx, cfg->tls_ciphersuites) != 1) {
        char what[300];
        snprintf(what, sizeof(what), "tls-ciphersuites \"%s\" names no usable suite",
                 cfg->tls_ciphersuites);
        ssl_error(err, cap, what);
        return 0;
    }
    if (cfg->tls_prefer_server_ciphers) {
        SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    }
    return 1;
}

/* This side's certificate chain and key (cert/key/pass: the server's or the client's files). */
static int use_identity(SSL_CTX *ctx, const char *cert, const char *key, const char *pass,
                        char *err, size_t cap)
{
    if (pass[0] != '\0') {
        SSL_CTX_set_default_passwd_cb(ctx, pass_cb);
        SSL_CTX_set_default_passwd_cb_userdata(ctx, (void *)pass);
    }
    char what[600];
    int ok = 0;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        snprintf(what, sizeof(what), "tls-cert-file %s", cert);
        ssl_error(err, cap, what);
    } else if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
               SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(what, sizeof(what), "tls-key-file %s (or it does not match the certificate)", key);
        ssl_error(err, cap, what);
    } else {
        ok = 1;
    }
    SSL_CTX_set_default_passwd_cb(ctx, NULL); /* the passphrase's string may change later */
    SSL_CTX_set_default_passwd_cb_userdata(ctx, NULL);
    return ok;
}

/* The CAs that certificates of the other side must chain to: tls-ca-cert-file and/or
 * tls-ca-cert-dir (a directory prepared by `openssl rehash`). */
static int use_cas(SSL_CTX *ctx, const struct hy_config *cfg, char *err, size_t cap)
{
    const char *file = cfg->tls_ca_cert_file[0] != '\0' ? cfg->tls_ca_cert_file : NULL;
    const char *dir = cfg->tls_ca_cert_dir[0] != '\0' ? cfg->tls_ca_cert_dir : NULL;
    if (SSL_CTX_load_verify_locations(ctx, file, dir) != 1) {
        char what[600];
        snprintf(what, sizeof(what), "tls-ca-cert-file %s / tls-ca-cert-dir %s",
                 file ? file : "(none)", dir ? dir : "(none)");
        ssl_error(err, cap, what);
        return 0;
    }
    return 1;
}

/* What every context shares: no compression or renegotiation, the protocols and ciphers. */
static SSL_CTX *ctx_base(const SSL_METHOD *method, const struct hy_config *cfg, char *err,
                         size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(method);
    if (ctx == NULL) {
        ssl_error(err, cap, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (!set_protocols(ctx, cfg->tls_protocols, err, cap) || !set_ciphers(ctx, cfg, err, cap)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* tls-session-caching, -size, -timeout: resumed sessions skip the certificate exchange. */
static void set_session_cache(SSL_CTX *ctx, const struct hy_config *cfg)
{
    if (!cfg->tls_session_caching) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        return;
    }
    static const unsigned char sid_ctx[] = "halyard";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, (long)cfg->tls_session_cache_size);
    SSL_CTX_set_timeout(ctx, (long)cfg->tls_session_cache_timeout);
}

/* The accepting side: this node's certificate, and the client's verified as `auth` says
 * (0 required, 1 not asked, 2 optional). */
static SSL_CTX *server_ctx(const struct hy_config *cfg, int auth, char *err, size_t cap)
{
    SSL_CTX *ctx = ctx_base(TLS_server_method(), cfg, err, cap);
    if (ctx == NULL) {
        return NULL;
    }
    if (!use_identity(ctx, cfg->tls_cert_file, cfg->tls_key_file, cfg->tls_key_file_pass, err,
                      cap)) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    set_session_cache(ctx, cfg);
    if (auth != 1) {
        if (cfg->tls_ca_cert_file[0] == '\0' && cfg->tls_ca_cert_dir[0] == '\0') {
            snprintf(err, cap,
                     "tls-auth-clients %s needs tls-ca-cert-file or tls-ca-cert-dir to verify "
                     "client certificates",
                     auth == 0 ? "yes" : "optional");
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (!use_cas(ctx, cfg, err, cap)) {
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (auth == 0 ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                           NULL);
    }
    return ctx;
}

struct io_tls_ctx *io_tls_ctx_new(const struct hy_config *cfg, char *err, size_t cap)
{
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, cap, "tls-port needs tls-cert-file and tls-key-file");
        return NULL;
    }
    SSL_CTX *ctx = server_ctx(cfg, (int)cfg->tls_auth_clients, err, cap);
    if (ctx == NULL) {
        return NULL;
    }
    struct io_tls_ctx *x = hy_xcalloc(1, sizeof(*x));
    x->ctx = ctx;
    return x;
}

struct io_tls_ctx *io_tls_cluster_ctx_new(const struct hy_config *cfg, char *err, size_t cap)
{
    if (cfg->tls_cert_file[0] == '\0' || cfg->tls_key_file[0] == '\0') {
        snprintf(err, cap, "tls-cluster needs tls-cert-file and tls-key-file");
        return NULL;
    }
    SSL_CTX *srv = server_ctx(cfg, 0, err, cap); /* members always show a certificate */
    if (srv == NULL) {
        return NULL;
    }
    SSL_CTX *cli = ctx_base(TLS_client_method(), cfg, err, cap);
    int client_own = cfg->tls_client_cert_file[0] != '\0';
    if (cli == NULL ||
        !use_identity(cli, client_own ? cfg->tls_client_cert_file : cfg->tls_cert_file,
                      client_own ? cfg->tls_client_key_file : cfg->tls_key_file,
                      client_own ? cfg->tls_client_key_file_pass : cfg->tls_key_file_pass, err,
                      cap) ||
        !use_cas(cli, cfg, err, cap)) {
        SSL_CTX_free(cli);
        SSL_CTX_free(srv);
        return NULL;
    }
    SSL_CTX_set_verify(cli, SSL_VERIFY_PEER, NULL);
    struct io_tls_ctx *x = hy_xcalloc(1, sizeof(*x));
    x->ctx = srv;
    x->client = cli;
    return x;
}

SSL_CTX *io_tls_link_ctx_new(const char *ca_file, const char *ca_dir, const char *cert,
                             const char *key, const char *pass, char *err, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        ssl_error(err, cap, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    int ok = ca_file[0] != '\0' || ca_dir[0] != '\0'
                 ? SSL_CTX_load_verify_locations(ctx, ca_file[0] ? ca_file : NULL,
                                                 ca_dir[0] ? ca_dir : NULL) == 1
                 : SSL_CTX_set_default_verify_paths(ctx) == 1;
    if (!ok) {
        char what[600];
        snprintf(what, sizeof(what), "the link's CA %s%s", ca_file[0] ? ca_file : ca_dir,
                 ca_file[0] || ca_dir[0] ? "" : "(the system's)");
        ssl_error(err, cap, what);
    } else if (cert[0] != '\0' && !use_identity(ctx, cert, key, pass, err, cap)) {
        ok = 0;
    }
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

void io_tls_ctx_free(struct io_tls_ctx *x)
{
    if (x != NULL) {
        SSL_CTX_free(x->ctx);
        SSL_CTX_free(x->client);
        hy_free(x);
    }
}

static struct io_tls *tls_new(SSL_CTX *ctx)
{
    struct io_tls *t = hy_xcalloc(1, sizeof(*t));
    t->ssl = SSL_new(ctx);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    HY_ASSERT(t->ssl != NULL && t->rbio != NULL && t->wbio != NULL);
    SSL_set_bio(t->ssl, t->rbio, t->wbio); /* the SSL owns both now */
    return t;
}

struct io_tls *io_tls_new(struct io_tls_ctx *x)
{
    struct io_tls *t = tls_new(x->ctx);
    SSL_set_accept_state(t->ssl);
    return t;
}

/* An IP address in text (v4 or v6), as opposed to a DNS name. */
static int is_ip(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

struct io_tls *io_tls_new_client(struct io_tls_ctx *x, const char *host)
{
    HY_ASSERT(x->client != NULL);
    struct io_tls *t = tls_new(x->client);
    SSL_set_connect_state(t->ssl);
    /* The certificate must name the address we dialled: a SAN IP entry for an address, a
     * SAN DNS entry (or the CN) for a name. */
    if (is_ip(host)) {
        HY_ASSERT(X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), host) == 1);
    } else {
        SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        HY_ASSERT(SSL_set1_host(t->ssl, host) == 1);
        SSL_set_tlsext_host_name(t->ssl, host);
    }
    return t;
}

int io_tls_peer_names(const struct io_tls *t, const char *host)
{
    X509 *cert = SSL_get0_peer_certificate(t->ssl);
    if (cert == NULL) {
        return 0;
    }
    if (is_ip(host)) {
        return X509_check_ip_asc(cert, host, 0) == 1;
    }
    return X509_check_host(cert, host, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) == 1;
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
            long v = SSL_get_verify_result(t->ssl);
            if (v != X509_V_OK) {
                char what[200];
                snprintf(what, sizeof(what), "TLS handshake failed (certificate: %s)",
                         X509_verify_cert_error_string(v));
                ssl_error(err, cap, what);
            } else {
                ssl_error(err, cap, "TLS handshake failed");
            }
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
