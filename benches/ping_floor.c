/*
 * benches/ping_floor.c: the kernel's floor for answering idle sockets' pings on this
 * machine (issue 14), the counterpart of benches/floor.c for the idle path.
 *
 * A minimal answerer: N loopback TCP connections; one thread, pinned to SERVER_CPU,
 * waits in epoll and answers each client's masked `pusher:ping` frame with one
 * pre-framed `pusher:pong` frame: one read() and one write() per ping and nothing else
 * (no parsing, no timers, no tasks). The pingers, in a child process pinned to
 * CLIENT_CPU, send N / PERIOD pings a second, spread evenly over 1 ms ticks, as rtc's
 * `bench connections --rate R --activity-timeout PERIOD` clients do, and count the pongs.
 *
 * Its CPU per answered ping (the whole process, from the first ping to the last pong) is
 * what any server pays at least on this machine: the read and the write, the wake-up of
 * the pinger on the other core, and this core's own wake-up in epoll_wait when pings come
 * one at a time.
 *
 * Usage: ping_floor N SECONDS [PERIOD_S=5] [SERVER_CPU=0] [CLIENT_CPU=1]
 * Prints one line of key=value figures; exit 1 if a ping went unanswered.
 * Build: cc -O2 -o ping_floor benches/ping_floor.c   (benches/run.sh does it)
 */
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char PING[] = "{\"event\":\"pusher:ping\",\"data\":{}}";
static const char PONG[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
#define PING_LEN (sizeof PING - 1)
#define PING_FRAME (2 + 4 + PING_LEN) /* header, mask key, masked payload */
#define PONG_FRAME (2 + sizeof PONG - 1)

/* The pingers: n connections; `seconds` of pings at n / period a second, then up to 2 s
 * for the last pongs; writes {pings sent, pong bytes received} to `report`, then closes
 * every socket. */
static void pingers(struct sockaddr_in addr, int n, double seconds, double period, int cpu, int report) {
    pin(cpu);
    unsigned char frame[PING_FRAME];
    const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    frame[0] = 0x81;
    frame[1] = 0x80 | (unsigned char)PING_LEN;
    memcpy(frame + 2, key, 4);
    for (size_t i = 0; i < PING_LEN; i++) frame[6 + i] = (unsigned char)PING[i] ^ key[i % 4];

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    int *fds = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0) die("socket (raise the open-file limit?)");
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0) die("epoll_ctl");
    }

    double per_second = n / period, tick = 0.001, start = now_s(), next = start;
    double due = 0; /* pings owed by the pacing, fractional */
    uint64_t sent = 0, got = 0;
    int cursor = 0;
    static char buf[1 << 16];
    struct epoll_event evs[256];
    double end = start + seconds, drain_until = end + 2;
    for (;;) {
        double t = now_s();
        if (t >= end && (got >= sent * PONG_FRAME || t >= drain_until)) break;
        if (t < end && t >= next) {
            due += per_second * tick;
            for (; due >= 1; due -= 1) {
                if (write(fds[cursor], frame, PING_FRAME) != (ssize_t)PING_FRAME) die("write ping");
                cursor = (cursor + 1) % n;
                sent++;
            }
            next += tick;
        }
        double wait = (t < end ? next : drain_until) - now_s();
        int ms = wait > 0 ? (int)(wait * 1000) : 0;
        int k = epoll_wait(ep, evs, 256, ms);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
            if (r > 0) got += (uint64_t)r;
        }
    }
    uint64_t out[2] = {sent, got};
    if (write(report, out, sizeof out) != sizeof out) die("write report");
    for (int i = 0; i < n; i++) close(fds[i]);
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N SECONDS [PERIOD_S=5] [SERVER_CPU=0] [CLIENT_CPU=1]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    double seconds = atof(argv[2]);
    double period = argc > 3 ? atof(argv[3]) : 5;
    int server_cpu = argc > 4 ? atoi(argv[4]) : 0;
    int client_cpu = argc > 5 ? atoi(argv[5]) : 1;
    if (n <= 0 || seconds <= 0 || period <= 0) {
        fprintf(stderr, "bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    char pong[PONG_FRAME];
    pong[0] = (char)0x81;
    pong[1] = (char)(sizeof PONG - 1);
    memcpy(pong + 2, PONG, sizeof PONG - 1);

    struct sockaddr_in addr;
    int listener = loopback_listener(&addr);
    int report[2];
    pid_t child = fork_partner(report);
    if (child == 0) {
        close(listener);
        pingers(addr, n, seconds, period, client_cpu, report[1]);
    }
    pin(server_cpu);

    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    /* Bytes of a partial ping frame left over per descriptor (pings arrive whole on
     * loopback, but nothing here relies on it). */
    int max_fd = n + 64;
    unsigned char *carry = calloc((size_t)max_fd, 1);
    for (int i = 0; i < n; i++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) die("accept");
        if (fd >= max_fd) {
            fprintf(stderr, "descriptor %d out of range\n", fd);
            return 2;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }
    close(listener);

    uint64_t answered = 0;
    double cpu0 = 0, cpu1 = 0, t0 = 0, t1 = 0;
    int open = n;
    static char buf[1 << 16];
    static char out[(1 << 16) / PING_FRAME * PONG_FRAME + PONG_FRAME];
    struct epoll_event evs[256];
    while (open > 0) {
        int k = epoll_wait(ep, evs, 256, -1);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            int fd = evs[i].data.fd;
            ssize_t r = read(fd, buf, sizeof buf);
            if (r > 0) {
                if (answered == 0) {
                    cpu0 = cpu_s(RUSAGE_SELF);
                    t0 = now_s();
                }
                size_t have = carry[fd] + (size_t)r, pings = have / PING_FRAME;
                carry[fd] = (unsigned char)(have % PING_FRAME);
                for (size_t p = 0; p < pings; p++) memcpy(out + p * PONG_FRAME, pong, PONG_FRAME);
                if (pings > 0 && write(fd, out, pings * PONG_FRAME) != (ssize_t)(pings * PONG_FRAME)) die("write pong");
                answered += pings;
                cpu1 = cpu_s(RUSAGE_SELF);
                t1 = now_s();
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(fd);
                open--;
            }
        }
    }
    uint64_t got[2] = {0, 0};
    if (read(report[0], got, sizeof got) != sizeof got) die("read report");
    waitpid(child, NULL, 0);
    uint64_t pongs = got[1] / PONG_FRAME;
    double cpu = cpu1 - cpu0, wall = t1 - t0;
    printf("ping_floor sockets=%d period_s=%.1f pings=%llu answered=%llu pongs=%llu unanswered=%lld "
           "wall_s=%.2f server_cpu_s=%.3f server_cores=%.3f us_per_ping=%.2f\n",
           n, period, (unsigned long long)got[0], (unsigned long long)answered, (unsigned long long)pongs,
           (long long)got[0] - (long long)pongs, wall, cpu, wall > 0 ? cpu / wall : 0,
           answered > 0 ? cpu * 1e6 / (double)answered : 0);
    return pongs == got[0] ? 0 : 1;
}
