#ifndef C_SHUTTLE_SPLICE_H
#define C_SHUTTLE_SPLICE_H

// The few Linux calls of the splice relay that Swift's Glibc module does not
// show (they sit behind _GNU_SOURCE or in headers it leaves out), wrapped in
// plain C types. Constants are Linux's own values, checked in the .c file.

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    CSHUTTLE_EPOLLIN = 0x001,
    CSHUTTLE_EPOLLOUT = 0x004,
    CSHUTTLE_EPOLLERR = 0x008,
    CSHUTTLE_EPOLLHUP = 0x010,
    CSHUTTLE_EPOLLRDHUP = 0x2000,
    CSHUTTLE_EPOLLEXCLUSIVE = 0x10000000,
};
/// EPOLLET (1u << 31) as an unsigned value.
static const uint32_t CSHUTTLE_EPOLLET = 0x80000000u;

/// One epoll event, unpacked.
typedef struct {
    uint32_t events;
    uint64_t data;
} cshuttle_event;

/// An epoll instance (close-on-exec); -1 and errno on failure.
int cshuttle_epoll_create(void);
/// EPOLL_CTL_ADD / MOD / DEL as op 1 / 3 / 2.
int cshuttle_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int cshuttle_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data);
int cshuttle_epoll_remove(int epfd, int fd);
/// Waits for up to `max` events (at most 1024); returns their number.
int cshuttle_epoll_wait(int epfd, cshuttle_event *events, int max, int timeout_ms);

/// A nonblocking, close-on-exec eventfd.
int cshuttle_eventfd(void);
/// Names the calling thread (at most 15 bytes show).
void cshuttle_set_thread_name(const char *name);

/// A nonblocking, close-on-exec pipe of about `size` bytes (the default
/// size when the system refuses that one). fds[0] reads, fds[1] writes.
int cshuttle_pipe(int fds[2], int size);

/// splice(2) with SPLICE_F_MOVE | SPLICE_F_NONBLOCK, no offsets.
ssize_t cshuttle_splice(int fd_in, int fd_out, size_t len);

/// accept4(2) with SOCK_NONBLOCK | SOCK_CLOEXEC; `address` may be NULL.
int cshuttle_accept(int fd, void *address, uint32_t *length);

/// A nonblocking, close-on-exec TCP socket of the family.
int cshuttle_tcp_socket(int family);

/// Makes a SO_REUSEPORT group (`fd` is one of its sockets) hand each new
/// connection to one of its first `count` sockets, chosen by the packet's
/// flow hash: a socket that joins the group later (another program of the
/// same user binding the port with SO_REUSEPORT) gets none. A packet with
/// no hash goes where the kernel's own choice puts it. 0, or -1 and errno.
int cshuttle_reuseport_confine(int fd, uint32_t count);

/// A nonblocking, close-on-exec UDP socket of the family.
int cshuttle_udp_socket(int family);

/// The most datagrams one cshuttle_receive_datagrams call takes.
enum { CSHUTTLE_DATAGRAM_BATCH_MAX = 64 };

/// recvmmsg(2): up to `count` (at most CSHUTTLE_DATAGRAM_BATCH_MAX)
/// datagrams, the i-th into `base + i * size` (`size` bytes), its length in
/// `lengths[i]`, its sender in `senders[i]` (a struct sockaddr_storage each)
/// with its length in `sender_lengths[i]`. A datagram longer than `size` is
/// cut, and `truncated[i]` is set. Returns how many came, or -1 and errno.
int cshuttle_receive_datagrams(
    int fd, void *base, size_t size, int count, size_t *lengths, void *senders, uint32_t *sender_lengths,
    uint8_t *truncated);

/// The most bytes one segmented send carries (the largest UDP payload
/// over IPv4).
enum { CSHUTTLE_SEGMENTED_MAX = 65507 };

/// sendmmsg(2): `count` (at most CSHUTTLE_DATAGRAM_BATCH_MAX) datagrams,
/// the i-th `lengths[i]` bytes at `datas[i]`, to `addresses[i]` (a struct
/// sockaddr_storage each, `address_lengths[i]` long), or to the socket's
/// peer when `addresses` is NULL. One the socket refuses (its buffer full,
/// an ICMP error pending) is dropped, as the network would, and the rest go
/// on. Returns how many went or were dropped, or -1 and errno.
///
/// While `*segmentation` is nonzero, consecutive datagrams to one place of
/// one length (the last of them may be shorter) go as one message with
/// UDP_SEGMENT (UDP GSO): the kernel sends them through its stack once and
/// splits them into the same datagrams. A path that cannot (no checksum
/// offload, a datagram above its MTU) gets them one by one, and
/// `*segmentation` is set to 0 so that it is not asked again. NULL: one by
/// one.
int cshuttle_send_datagrams(
    int fd, void *const *datas, const size_t *lengths, const void *addresses, const uint32_t *address_lengths,
    int count, int *segmentation);

/// The monotonic clock in nanoseconds.
uint64_t cshuttle_now(void);

#include "CShuttleTLS.h"

#endif
