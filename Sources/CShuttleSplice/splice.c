#ifdef __linux__
#define _GNU_SOURCE
#include "CShuttleSplice.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

// Linux 4.5; older headers lack the name.
#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51
#endif

// UDP GSO (Linux 4.18); older headers lack the names.
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

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

int cshuttle_reuseport_confine(int fd, uint32_t count) {
    if (count == 0) {
        errno = EINVAL;
        return -1;
    }
    struct sock_filter code[] = {
        // A = the packet's flow hash (the sender's, on loopback; the NIC's)
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_AD_OFF + SKF_AD_RXHASH),
        // none: an index past the group, so that the kernel picks by its own hash
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
        // else: one of the first `count` sockets
        BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, count),
        BPF_STMT(BPF_RET | BPF_A, 0),
    };
    struct sock_fprog program = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &program, sizeof(program));
}

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

/// Whether datagrams `i` and `j` go to the same place (always, on a
/// connected socket: `to` is NULL).
static int same_destination(const struct sockaddr_storage *to, const uint32_t *address_lengths, int i, int j) {
    if (!to) return 1;
    return address_lengths[i] == address_lengths[j] && memcmp(&to[i], &to[j], address_lengths[i]) == 0;
}

/// Lays out `count` datagrams from `first` on as messages: one each, or,
/// with `segment`, each run of datagrams to one destination whose lengths
/// are equal (the last may be shorter) as one message with UDP_SEGMENT,
/// which the kernel sends as one and splits into the same datagrams.
/// `starts[m]` is message m's first datagram; returns the messages' number.
static int lay_out(
    struct mmsghdr *messages, struct iovec *vectors, char (*controls)[CMSG_SPACE(sizeof(uint16_t))], int *starts,
    void *const *datas, const size_t *lengths, const struct sockaddr_storage *to, const uint32_t *address_lengths,
    int first, int count, int segment) {
    int m = 0;
    for (int i = first; i < count;) {
        int run = 1;
        size_t total = lengths[i];
        if (segment && lengths[i] > 0) {
            // A run is at most a batch, 64 datagrams: no more than the kernel's UDP_MAX_SEGMENTS (64 or more).
            while (i + run < count && lengths[i + run] > 0
                   && lengths[i + run] <= lengths[i] && total + lengths[i + run] <= CSHUTTLE_SEGMENTED_MAX
                   && same_destination(to, address_lengths, i, i + run)) {
                total += lengths[i + run];
                run++;
                if (lengths[i + run - 1] < lengths[i]) break;  // a shorter one ends the run
            }
        }
        for (int k = 0; k < run; k++) {
            vectors[i + k].iov_base = datas[i + k];
            vectors[i + k].iov_len = lengths[i + k];
        }
        messages[m].msg_hdr = (struct msghdr){
            .msg_name = to ? (void *)&to[i] : NULL,
            .msg_namelen = to ? address_lengths[i] : 0,
            .msg_iov = &vectors[i],
            .msg_iovlen = (size_t)run,
        };
        if (run > 1) {
            memset(controls[m], 0, sizeof controls[m]);
            messages[m].msg_hdr.msg_control = controls[m];
            messages[m].msg_hdr.msg_controllen = sizeof controls[m];
            struct cmsghdr *header = CMSG_FIRSTHDR(&messages[m].msg_hdr);
            header->cmsg_level = SOL_UDP;
            header->cmsg_type = UDP_SEGMENT;
            header->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t size = (uint16_t)lengths[i];
            memcpy(CMSG_DATA(header), &size, sizeof size);
        }
        messages[m].msg_len = 0;
        starts[m] = i;
        m++;
        i += run;
    }
    starts[m] = count;
    return m;
}

int cshuttle_send_datagrams(
    int fd, void *const *datas, const size_t *lengths, const void *addresses, const uint32_t *address_lengths,
    int count, int *segmentation) {
    struct mmsghdr messages[CSHUTTLE_DATAGRAM_BATCH_MAX];
    struct iovec vectors[CSHUTTLE_DATAGRAM_BATCH_MAX];
    char controls[CSHUTTLE_DATAGRAM_BATCH_MAX][CMSG_SPACE(sizeof(uint16_t))];
    int starts[CSHUTTLE_DATAGRAM_BATCH_MAX + 1];
    if (count > CSHUTTLE_DATAGRAM_BATCH_MAX) count = CSHUTTLE_DATAGRAM_BATCH_MAX;
    const struct sockaddr_storage *to = addresses;
    int segment = segmentation && *segmentation;
    int total = lay_out(messages, vectors, controls, starts, datas, lengths, to, address_lengths, 0, count, segment);
    int sent = 0;  // messages
    while (sent < total) {
        int n = sendmmsg(fd, messages + sent, (unsigned)(total - sent), MSG_DONTWAIT);
        if (n >= 0) {
            sent += n;
            continue;
        }
        if (errno == EINTR) continue;
        if (messages[sent].msg_hdr.msg_iovlen > 1) {
            // A run refused as a whole goes again one datagram at a time. A
            // path that cannot segment (no checksum offload, a datagram
            // above its MTU) is not asked to again.
            if (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP) *segmentation = 0;
            int from = starts[sent];
            total = lay_out(messages, vectors, controls, starts, datas, lengths, to, address_lengths, from, count, 0);
            sent = 0;
            continue;
        }
        // A datagram the socket refuses (buffer full, an ICMP error
        // pending) is dropped, as the network would; the rest go on.
        if (errno == EAGAIN || errno == ECONNREFUSED || errno == EMSGSIZE) {
            sent++;
            continue;
        }
        return starts[sent] > 0 ? starts[sent] : -1;
    }
    return count;
}

uint64_t cshuttle_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}
#endif
