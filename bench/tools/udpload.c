/* UDP request/reply load for the benchmark: FLOWS client sockets (each its
 * own source port, so a proxy sees FLOWS clients), each keeping WINDOW
 * datagrams of SIZE bytes in flight; every reply sends the next request.
 * A flow that heard nothing for 100 ms is refilled (datagrams are lost
 * under overload). Prints one JSON line: replies/s and Gbit/s of replies. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: udpload PORT SECONDS FLOWS WINDOW SIZE\n");
        return 2;
    }
    int port = atoi(argv[1]), flows = atoi(argv[3]), window = atoi(argv[4]), size = atoi(argv[5]);
    double seconds = atof(argv[2]);
    if (flows < 1 || flows > 1024 || window < 1 || size < 1 || size > 65000) return 2;
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int ep = epoll_create1(0);
    int *fds = calloc(flows, sizeof *fds);
    double *heard = calloc(flows, sizeof *heard);
    char *payload = malloc(size), *in = malloc(65536);
    memset(payload, 'x', size);
    double start = now();
    for (int i = 0; i < flows; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        if (connect(fds[i], (struct sockaddr *)&to, sizeof to) != 0) {
            perror("connect");
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        for (int w = 0; w < window; w++) send(fds[i], payload, size, 0);
        heard[i] = start;
    }
    long replies = 0, bytes = 0, sent = (long)flows * window, refills = 0, short_replies = 0;
    double end = start + seconds, last_check = start;
    struct epoll_event events[64];
    for (;;) {
        double t = now();
        if (t >= end) break;
        int n = epoll_wait(ep, events, 64, 10);
        t = now();
        for (int e = 0; e < n; e++) {
            int i = events[e].data.u32;
            for (;;) {
                ssize_t r = recv(fds[i], in, 65536, 0);
                if (r < 0) break; /* EAGAIN, or ECONNREFUSED before the backend is up */
                replies++;
                bytes += r;
                if (r != size) short_replies++;
                heard[i] = t;
                if (send(fds[i], payload, size, 0) > 0) sent++;
            }
        }
        if (t - last_check > 0.05) {
            last_check = t;
            for (int i = 0; i < flows; i++) {
                if (t - heard[i] > 0.1) {
                    for (int w = 0; w < window; w++) if (send(fds[i], payload, size, 0) > 0) sent++;
                    heard[i] = t;
                    refills++;
                }
            }
        }
    }
    double elapsed = now() - start;
    printf("{\"replies_per_s\": %.1f, \"gbit_per_s\": %.4f, \"sent\": %ld, \"replies\": %ld, \"refills\": %ld, \"short\": %ld, \"seconds\": %.3f}\n",
           replies / elapsed, bytes * 8.0 / elapsed / 1e9, sent, replies, refills, short_replies, elapsed);
    return 0;
}
