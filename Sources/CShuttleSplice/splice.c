#ifdef __linux__
#define _GNU_SOURCE
#include "CShuttleSplice.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

_Static_assert(CSHUTTLE_EPOLLIN == EPOLLIN, "EPOLLIN");
_Static_assert(CSHUTTLE_EPOLLOUT == EPOLLOUT, "EPOLLOUT");
_Static_assert(CSHUTTLE_EPOLLERR == EPOLLERR, "EPOLLERR");
_Static_assert(CSHUTTLE_EPOLLHUP == EPOLLHUP, "EPOLLHUP");
_Static_assert(CSHUTTLE_EPOLLRDHUP == EPOLLRDHUP, "EPOLLRDHUP");
_Static_assert(CSHUTTLE_EPOLLEXCLUSIVE == EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE");
_Static_assert(0x80000000u == (uint32_t)EPOLLET, "EPOLLET");

int cshuttle_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int control(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event event = {.events = events, .data = {.u64 = data}};
    return epoll_ctl(epfd, op, fd, &event);
}

int cshuttle_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    return control(epfd, EPOLL_CTL_ADD, fd, events, data);
}

int cshuttle_epoll_modify(int epfd, int fd, uint32_t events, uint64_t data) {
    return control(epfd, EPOLL_CTL_MOD, fd, events, data);
}

int cshuttle_epoll_remove(int epfd, int fd) { return control(epfd, EPOLL_CTL_DEL, fd, 0, 0); }

int cshuttle_epoll_wait(int epfd, cshuttle_event *events, int max, int timeout_ms) {
    struct epoll_event raw[1024];
    if (max > 1024) max = 1024;
    int count;
    do {
        count = epoll_wait(epfd, raw, max, timeout_ms);
    } while (count < 0 && errno == EINTR);
    for (int i = 0; i < count; i++) {
        events[i].events = raw[i].events;
        events[i].data = raw[i].data.u64;
    }
    return count;
}

int cshuttle_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

void cshuttle_set_thread_name(const char *name) {
    char shortened[16];
    strncpy(shortened, name, sizeof shortened - 1);
    shortened[sizeof shortened - 1] = 0;
    pthread_setname_np(pthread_self(), shortened);
}

int cshuttle_pipe(int fds[2], int size) {
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -1;
    if (size > 0) (void)fcntl(fds[0], F_SETPIPE_SZ, size);
    return 0;
}

ssize_t cshuttle_splice(int fd_in, int fd_out, size_t len) {
    ssize_t n;
    do {
        n = splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    } while (n < 0 && errno == EINTR);
    return n;
}

int cshuttle_accept(int fd, void *address, uint32_t *length) {
    socklen_t size = length ? *length : 0;
    int client;
    do {
        client = accept4(fd, address, address ? &size : NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (client < 0 && errno == EINTR);
    if (length) *length = size;
    return client;
}

int cshuttle_tcp_socket(int family) { return socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int cshuttle_udp_socket(int family) { return socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); }

int cshuttle_receive_datagrams(
    int fd, void *base, size_t size, int count, size_t *lengths, void *senders, uint32_t *sender_lengths,
    uint8_t *truncated) {
    struct mmsghdr messages[CSHUTTLE_DATAGRAM_BATCH_MAX];
    struct iovec vectors[CSHUTTLE_DATAGRAM_BATCH_MAX];
    if (count > CSHUTTLE_DATAGRAM_BATCH_MAX) count = CSHUTTLE_DATAGRAM_BATCH_MAX;
    struct sockaddr_storage *addresses = senders;
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = (char *)base + (size_t)i * size;
        vectors[i].iov_len = size;
        messages[i].msg_hdr = (struct msghdr){
            .msg_name = &addresses[i],
            .msg_namelen = sizeof(struct sockaddr_storage),
            .msg_iov = &vectors[i],
            .msg_iovlen = 1,
        };
        messages[i].msg_len = 0;
    }
    int n;
    do {
        n = recvmmsg(fd, messages, (unsigned)count, 0, NULL);
    } while (n < 0 && errno == EINTR);
    for (int i = 0; i < n; i++) {
        lengths[i] = messages[i].msg_len;
        sender_lengths[i] = messages[i].msg_hdr.msg_namelen;
        truncated[i] = (messages[i].msg_hdr.msg_flags & MSG_TRUNC) != 0;
    }
    return n;
}

int cshuttle_send_datagrams(
    int fd, void *const *datas, const size_t *lengths, const void *addresses, const uint32_t *address_lengths,
    int count) {
    struct mmsghdr messages[CSHUTTLE_DATAGRAM_BATCH_MAX];
    struct iovec vectors[CSHUTTLE_DATAGRAM_BATCH_MAX];
    if (count > CSHUTTLE_DATAGRAM_BATCH_MAX) count = CSHUTTLE_DATAGRAM_BATCH_MAX;
    const struct sockaddr_storage *to = addresses;
    for (int i = 0; i < count; i++) {
        vectors[i].iov_base = datas[i];
        vectors[i].iov_len = lengths[i];
        messages[i].msg_hdr = (struct msghdr){
            .msg_name = to ? (void *)&to[i] : NULL,
            .msg_namelen = to ? address_lengths[i] : 0,
            .msg_iov = &vectors[i],
            .msg_iovlen = 1,
        };
        messages[i].msg_len = 0;
    }
    int sent = 0;
    while (sent < count) {
        int n = sendmmsg(fd, messages + sent, (unsigned)(count - sent), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            // A datagram the socket refuses (buffer full, an ICMP error
            // pending) is dropped, as the network would; the rest go on.
            if (sent < count && (errno == EAGAIN || errno == ECONNREFUSED || errno == EMSGSIZE)) {
                sent++;
                continue;
            }
            return sent > 0 ? sent : -1;
        }
        sent += n;
    }
    return sent;
}

uint64_t cshuttle_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#endif
