#ifdef __linux__
#define _GNU_SOURCE
#include "CShuttleTLS.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// OpenSSL 3's types stay opaque here, and its constants are written out:
// its headers are not needed to build. The values are OpenSSL 3.0's
// (ssl.h, tls1.h, prov_ssl.h), which 3.x keeps.
typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_method_st SSL_METHOD;
typedef struct bio_st BIO;

enum {
    SSL_ERROR_SSL = 1,
    SSL_ERROR_WANT_READ = 2,
    SSL_ERROR_WANT_WRITE = 3,
    SSL_ERROR_SYSCALL = 5,
    SSL_ERROR_ZERO_RETURN = 6,
    SSL_CTRL_MODE = 33,
    SSL_CTRL_SET_READ_AHEAD = 41,
    SSL_CTRL_SET_SESS_CACHE_MODE = 44,
    SSL_SESS_CACHE_OFF = 0,
    SSL_CTRL_SET_TLSEXT_SERVERNAME_CB = 53,
    SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG = 54,
    SSL_CTRL_SET_MIN_PROTO_VERSION = 123,
    SSL_CTRL_SET_MAX_PROTO_VERSION = 124,
    TLS1_2_VERSION = 0x0303,
    TLS1_3_VERSION = 0x0304,
    SSL_FILETYPE_PEM = 1,
    TLSEXT_NAMETYPE_host_name = 0,
    SSL_TLSEXT_ERR_OK = 0,
    SSL_TLSEXT_ERR_NOACK = 3,
    OPENSSL_NPN_NEGOTIATED = 1,
    BIO_CB_READ = 0x02,
    BIO_CB_RETURN = 0x80,
};
static const long SSL_MODE_ENABLE_PARTIAL_WRITE = 0x1;
static const long SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER = 0x2;
static const long SSL_MODE_RELEASE_BUFFERS = 0x10;
static const uint64_t SSL_OP_IGNORE_UNEXPECTED_EOF = (uint64_t)1 << 7;
static const uint64_t SSL_OP_NO_COMPRESSION = (uint64_t)1 << 17;
static const uint64_t SSL_OP_CIPHER_SERVER_PREFERENCE = (uint64_t)1 << 22;
static const uint64_t SSL_OP_NO_RENEGOTIATION = (uint64_t)1 << 30;

typedef int (*servername_callback)(SSL *, int *, void *);
typedef long (*bio_callback)(BIO *, int, const char *, size_t, int, long, int, size_t *);
typedef int (*alpn_callback)(
    SSL *, const unsigned char **, unsigned char *, const unsigned char *, unsigned int, void *);

// The functions used, found by name.
static struct {
    const SSL_METHOD *(*TLS_server_method)(void);
    SSL_CTX *(*SSL_CTX_new)(const SSL_METHOD *);
    void (*SSL_CTX_free)(SSL_CTX *);
    long (*SSL_CTX_ctrl)(SSL_CTX *, int, long, void *);
    long (*SSL_CTX_callback_ctrl)(SSL_CTX *, int, void (*)(void));
    uint64_t (*SSL_CTX_set_options)(SSL_CTX *, uint64_t);
    int (*SSL_CTX_use_certificate_chain_file)(SSL_CTX *, const char *);
    int (*SSL_CTX_use_PrivateKey_file)(SSL_CTX *, const char *, int);
    int (*SSL_CTX_check_private_key)(const SSL_CTX *);
    void (*SSL_CTX_set_alpn_select_cb)(SSL_CTX *, alpn_callback, void *);
    int (*SSL_select_next_proto)(
        unsigned char **, unsigned char *, const unsigned char *, unsigned int, const unsigned char *, unsigned int);
    SSL *(*SSL_new)(SSL_CTX *);
    void (*SSL_free)(SSL *);
    int (*SSL_set_fd)(SSL *, int);
    void (*SSL_set_accept_state)(SSL *);
    int (*SSL_set_ex_data)(SSL *, int, void *);
    void *(*SSL_get_ex_data)(const SSL *, int);
    const char *(*SSL_get_servername)(const SSL *, int);
    SSL_CTX *(*SSL_get_SSL_CTX)(const SSL *);
    SSL_CTX *(*SSL_set_SSL_CTX)(SSL *, SSL_CTX *);
    int (*SSL_do_handshake)(SSL *);
    int (*SSL_read_ex)(SSL *, void *, size_t, size_t *);
    int (*SSL_write_ex)(SSL *, const void *, size_t, size_t *);
    int (*SSL_get_error)(const SSL *, int);
    int (*SSL_shutdown)(SSL *);
    int (*SSL_has_pending)(const SSL *);
    BIO *(*SSL_get_rbio)(const SSL *);
    void (*BIO_set_callback_ex)(BIO *, bio_callback);
    void (*BIO_set_callback_arg)(BIO *, char *);
    char *(*BIO_get_callback_arg)(const BIO *);
    unsigned long (*ERR_get_error)(void);
    void (*ERR_error_string_n)(unsigned long, char *, size_t);
    void (*ERR_clear_error)(void);
    unsigned long (*ERR_peek_error)(void);
    const char *(*OpenSSL_version)(int);
} ssl;

static cshuttle_tls_select select_context;
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void) {
    // SHUTTLE_LIBSSL names another libssl 3 (a path, or a name the loader finds).
    const char *path = getenv("SHUTTLE_LIBSSL");
    if (path == NULL || path[0] == '\0') path = "libssl.so.3";
    void *library = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(load_error, sizeof load_error, "%s", reason ? reason : path);
        return;
    }
    // dlsym on libssl's handle also searches libcrypto, which it needs.
#define FIND(name)                                                                  \
    do {                                                                            \
        *(void **)&ssl.name = dlsym(library, #name);                                \
        if (ssl.name == NULL) {                                                     \
            snprintf(load_error, sizeof load_error, "%s has no %s", path, #name);   \
            return;                                                                 \
        }                                                                           \
    } while (0)
    FIND(TLS_server_method);
    FIND(SSL_CTX_new);
    FIND(SSL_CTX_free);
    FIND(SSL_CTX_ctrl);
    FIND(SSL_CTX_callback_ctrl);
    FIND(SSL_CTX_set_options);
    FIND(SSL_CTX_use_certificate_chain_file);
    FIND(SSL_CTX_use_PrivateKey_file);
    FIND(SSL_CTX_check_private_key);
    FIND(SSL_CTX_set_alpn_select_cb);
    FIND(SSL_select_next_proto);
    FIND(SSL_new);
    FIND(SSL_free);
    FIND(SSL_set_fd);
    FIND(SSL_set_accept_state);
    FIND(SSL_set_ex_data);
    FIND(SSL_get_ex_data);
    FIND(SSL_get_servername);
    FIND(SSL_get_SSL_CTX);
    FIND(SSL_set_SSL_CTX);
    FIND(SSL_do_handshake);
    FIND(SSL_read_ex);
    FIND(SSL_write_ex);
    FIND(SSL_get_error);
    FIND(SSL_shutdown);
    FIND(SSL_has_pending);
    FIND(SSL_get_rbio);
    FIND(BIO_set_callback_ex);
    FIND(BIO_set_callback_arg);
    FIND(BIO_get_callback_arg);
    FIND(ERR_get_error);
    FIND(ERR_error_string_n);
    FIND(ERR_clear_error);
    FIND(ERR_peek_error);
    FIND(OpenSSL_version);
#undef FIND
    load_error[0] = '\0';
}

int cshuttle_tls_load(cshuttle_tls_select select, char *error, size_t size) {
    static pthread_mutex_t first = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&first);
    if (select_context == NULL) select_context = select;
    pthread_mutex_unlock(&first);
    pthread_once(&load_once, load);
    if (load_error[0] != '\0') {
        snprintf(error, size, "%s", load_error);
        return -1;
    }
    return 0;
}

const char *cshuttle_tls_version(void) {
    if (load_error[0] != '\0' || ssl.OpenSSL_version == NULL) return "";
    return ssl.OpenSSL_version(0);  // OPENSSL_VERSION
}

/// The thread's first queued OpenSSL error, or `fallback`, into `error`
/// (none: dropped); the queue is emptied.
static void describe(const char *fallback, char *error, size_t size) {
    unsigned long code = ssl.ERR_get_error();
    if (error != NULL) {
        if (code != 0) {
            ssl.ERR_error_string_n(code, error, size);
        } else {
            snprintf(error, size, "%s", fallback);
        }
    }
    ssl.ERR_clear_error();
}

static int on_server_name(SSL *session, int *alert, void *unused) {
    (void)alert;
    (void)unused;
    void *arg = ssl.SSL_get_ex_data(session, 0);
    const char *name = ssl.SSL_get_servername(session, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *chosen = select_context ? select_context(name, arg) : NULL;
    if (chosen != NULL && chosen != ssl.SSL_get_SSL_CTX(session)) ssl.SSL_set_SSL_CTX(session, chosen);
    return SSL_TLSEXT_ERR_OK;
}

static const unsigned char http11[] = "\x08http/1.1";

static int on_alpn(
    SSL *session, const unsigned char **out, unsigned char *out_length, const unsigned char *offered,
    unsigned int offered_length, void *unused) {
    (void)session;
    (void)unused;
    unsigned char *chosen = NULL;
    int result = ssl.SSL_select_next_proto(
        &chosen, out_length, http11, sizeof http11 - 1, offered, offered_length);
    if (result != OPENSSL_NPN_NEGOTIATED) return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

void *cshuttle_tls_context_new(const char *chain_file, const char *key_file, char *error, size_t size) {
    ssl.ERR_clear_error();
    SSL_CTX *context = ssl.SSL_CTX_new(ssl.TLS_server_method());
    if (context == NULL) {
        describe("SSL_CTX_new failed", error, size);
        return NULL;
    }
    ssl.SSL_CTX_ctrl(context, SSL_CTRL_SET_MIN_PROTO_VERSION, TLS1_2_VERSION, NULL);
    ssl.SSL_CTX_ctrl(context, SSL_CTRL_SET_MAX_PROTO_VERSION, TLS1_3_VERSION, NULL);
    ssl.SSL_CTX_ctrl(
        context, SSL_CTRL_MODE,
        SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS, NULL);
    // One read(2) takes all the socket has (up to a record's room), not a
    // record's header and then its body.
    ssl.SSL_CTX_ctrl(context, SSL_CTRL_SET_READ_AHEAD, 1, NULL);
    // Resumption by tickets only: a session cache would hold up to 20,480
    // sessions per certificate, however many clients come and go.
    ssl.SSL_CTX_ctrl(context, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, NULL);
    // A client's end without close_notify is an end, as NIO's path takes it.
    ssl.SSL_CTX_set_options(
        context, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE
                     | SSL_OP_NO_RENEGOTIATION);
    ssl.SSL_CTX_callback_ctrl(context, SSL_CTRL_SET_TLSEXT_SERVERNAME_CB, (void (*)(void))on_server_name);
    ssl.SSL_CTX_set_alpn_select_cb(context, on_alpn, NULL);
    if (ssl.SSL_CTX_use_certificate_chain_file(context, chain_file) != 1) {
        describe("the certificate chain was not taken", error, size);
        ssl.SSL_CTX_free(context);
        return NULL;
    }
    if (ssl.SSL_CTX_use_PrivateKey_file(context, key_file, SSL_FILETYPE_PEM) != 1
        || ssl.SSL_CTX_check_private_key(context) != 1) {
        describe("the private key was not taken", error, size);
        ssl.SSL_CTX_free(context);
        return NULL;
    }
    return context;
}

void cshuttle_tls_context_free(void *context) {
    if (context != NULL) ssl.SSL_CTX_free(context);
}

/// A session; whether it failed (a failed session is not shut down); and
/// whether its socket's last read took less than it asked for.
typedef struct {
    SSL *ssl;
    int failed;
    int short_read;
} session_t;

/// Sees each read of the session's socket end.
static long on_socket_read(
    BIO *bio, int operation, const char *unused, size_t asked, int argi, long argl, int result, size_t *taken) {
    (void)unused;
    (void)argi;
    (void)argl;
    if (operation == (BIO_CB_READ | BIO_CB_RETURN)) {
        session_t *session = (session_t *)ssl.BIO_get_callback_arg(bio);
        session->short_read = result <= 0 || taken == NULL || *taken < asked;
    }
    return result;
}

void *cshuttle_tls_session_new(void *context, int fd, void *arg, char *error, size_t size) {
    ssl.ERR_clear_error();
    session_t *session = calloc(1, sizeof *session);
    if (session == NULL) {
        snprintf(error, size, "out of memory");
        return NULL;
    }
    session->ssl = ssl.SSL_new(context);
    if (session->ssl == NULL || ssl.SSL_set_fd(session->ssl, fd) != 1) {
        describe("SSL_new failed", error, size);
        if (session->ssl != NULL) ssl.SSL_free(session->ssl);
        free(session);
        return NULL;
    }
    ssl.SSL_set_ex_data(session->ssl, 0, arg);
    BIO *socket = ssl.SSL_get_rbio(session->ssl);
    ssl.BIO_set_callback_ex(socket, on_socket_read);
    ssl.BIO_set_callback_arg(socket, (char *)session);
    ssl.SSL_set_accept_state(session->ssl);
    return session;
}

void cshuttle_tls_session_free(void *session) {
    if (session == NULL) return;
    session_t *s = session;
    ssl.SSL_free(s->ssl);
    free(s);
}

/// What an operation that did not succeed came to; why, into `error`
/// unless it is NULL.
static int outcome(session_t *session, int result, char *error, size_t size) {
    int saved = errno;
    switch (ssl.SSL_get_error(session->ssl, result)) {
    case SSL_ERROR_WANT_READ:
        return CSHUTTLE_TLS_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return CSHUTTLE_TLS_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return CSHUTTLE_TLS_CLOSED;
    case SSL_ERROR_SYSCALL:
        session->failed = 1;
        if (ssl.ERR_get_error() == 0 && saved == 0) {
            ssl.ERR_clear_error();
            return CSHUTTLE_TLS_CLOSED;
        }
        ssl.ERR_clear_error();
        if (error != NULL) snprintf(error, size, "%s", strerror(saved));
        return CSHUTTLE_TLS_FAILED;
    default:
        session->failed = 1;
        describe("TLS failed", error, size);
        return CSHUTTLE_TLS_FAILED;
    }
}

/// SSL_get_error needs the thread's error queue empty before the call. It
/// is emptied after every failure here, so this looks before it clears
/// (clearing walks the whole queue: 1% of a request's CPU).
static inline void start_clean(void) {
    if (ssl.ERR_peek_error() != 0) ssl.ERR_clear_error();
}

int cshuttle_tls_handshake(void *session, char *error, size_t size) {
    session_t *s = session;
    start_clean();
    errno = 0;
    int result = ssl.SSL_do_handshake(s->ssl);
    if (result == 1) return 1;
    return outcome(s, result, error, size);
}

ssize_t cshuttle_tls_read(void *session, void *buffer, size_t size) {
    session_t *s = session;
    start_clean();
    errno = 0;
    size_t taken = 0;
    int result = ssl.SSL_read_ex(s->ssl, buffer, size, &taken);
    if (result == 1) return (ssize_t)taken;
    return outcome(s, result, NULL, 0);
}

ssize_t cshuttle_tls_write(void *session, const void *buffer, size_t size) {
    session_t *s = session;
    start_clean();
    errno = 0;
    size_t written = 0;
    int result = ssl.SSL_write_ex(s->ssl, buffer, size, &written);
    if (result == 1) return (ssize_t)written;
    return outcome(s, result, NULL, 0);
}

int cshuttle_tls_drained(void *session) {
    session_t *s = session;
    return s->short_read && !ssl.SSL_has_pending(s->ssl);
}

void cshuttle_tls_shutdown(void *session) {
    session_t *s = session;
    if (s->failed) return;
    ssl.ERR_clear_error();
    (void)ssl.SSL_shutdown(s->ssl);
    ssl.ERR_clear_error();
}
#endif
