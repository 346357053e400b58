#ifndef C_SHUTTLE_TLS_H
#define C_SHUTTLE_TLS_H

// TLS for the relay's HTTPS listener: the system's OpenSSL 3 (libssl.so.3),
// loaded at run time with dlopen, so that neither building nor running
// shuttle needs it: without it, HTTPS stays on SwiftNIO (NIOSSL). Only the
// server side, over a nonblocking socket, with the settings of the NIO path:
// TLS 1.2 and 1.3, ALPN http/1.1, the certificate chosen by SNI.

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// What a handshake, read or write step came to, besides bytes (> 0).
enum {
    /// The peer closed (close_notify, or the socket's end).
    CSHUTTLE_TLS_CLOSED = 0,
    /// Failed: the reason is in the error text.
    CSHUTTLE_TLS_FAILED = -1,
    /// Try again once the socket is readable.
    CSHUTTLE_TLS_WANT_READ = -2,
    /// Try again once the socket is writable.
    CSHUTTLE_TLS_WANT_WRITE = -3,
};

/// Chooses the context (an SSL_CTX) for a handshake's SNI name (NULL when
/// the client sent none). `arg` is what the session was made with. NULL:
/// keep the one the session started with.
typedef void *(*cshuttle_tls_select)(const char *server_name, void *arg);

/// Loads libssl once (later calls give the first answer): 0, or -1 with the
/// reason in `error`. `select` is called during handshakes. The library is
/// libssl.so.3, or what the environment's SHUTTLE_LIBSSL names.
int cshuttle_tls_load(cshuttle_tls_select select, char *error, size_t size);

/// The loaded library's version text (OpenSSL_version), or "" before a
/// successful load.
const char *cshuttle_tls_version(void);

/// A server context for one certificate chain and key (PEM files): NULL on
/// failure, with the reason in `error`.
void *cshuttle_tls_context_new(const char *chain_file, const char *key_file, char *error, size_t size);
void cshuttle_tls_context_free(void *context);

/// A server session over `fd` (nonblocking), `arg` handed to the select
/// function: NULL on failure, with the reason in `error`.
void *cshuttle_tls_session_new(void *context, int fd, void *arg, char *error, size_t size);
void cshuttle_tls_session_free(void *session);

/// One step of the handshake: 1 when done, else a CSHUTTLE_TLS_ value.
int cshuttle_tls_handshake(void *session, char *error, size_t size);
/// Decrypted bytes (> 0), or a CSHUTTLE_TLS_ value (a failure's reason is
/// dropped: the connection ends either way).
ssize_t cshuttle_tls_read(void *session, void *buffer, size_t size);
/// Bytes taken (> 0), or a CSHUTTLE_TLS_ value. A write that wanted to be
/// retried is retried with the same bytes first (they may have moved).
ssize_t cshuttle_tls_write(void *session, const void *buffer, size_t size);
/// Whether the socket had nothing more at the session's last read of it and
/// nothing read is left to decrypt: edge-triggered epoll says when more
/// comes, so no read need be spent finding EAGAIN.
int cshuttle_tls_drained(void *session);
/// Sends close_notify if it can at once; nothing is waited for.
void cshuttle_tls_shutdown(void *session);

#endif
