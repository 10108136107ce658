/*
 * benches/floor.h: what the kernel-floor benchmarks (floor.c, ping_floor.c) share:
 * failing loudly, pinning to a core, and the clocks they measure with.
 */
#ifndef RTC_BENCH_FLOOR_H
#define RTC_BENCH_FLOOR_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Prints `what` with errno's text and exits 2. */
static void die(const char *what) {
    perror(what);
    exit(2);
}

/* Pins the calling thread (and what it forks later) to `cpu`; warns if it cannot. */
static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) perror("sched_setaffinity (not pinned)");
}

/* Monotonic wall-clock seconds. */
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of RUSAGE_THREAD or RUSAGE_SELF. */
static double cpu_s(int who) {
    struct rusage u;
    getrusage(who, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

/* A listening TCP socket on a free loopback port (backlog 4,096); `addr` gets its address. */
static int loopback_listener(struct sockaddr_in *addr) {
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(listener, (struct sockaddr *)addr, sizeof *addr) != 0) die("bind");
    if (listen(listener, 4096) != 0) die("listen");
    socklen_t alen = sizeof *addr;
    if (getsockname(listener, (struct sockaddr *)addr, &alen) != 0) die("getsockname");
    return listener;
}

/* Forks the measuring side's partner: returns 0 in the child, with `report[1]` open for
 * it to write its figures to; in the parent, the child's pid, with `report[0]` open. */
static pid_t fork_partner(int report[2]) {
    if (pipe(report) != 0) die("pipe");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(report[0]);
    } else {
        close(report[1]);
    }
    return child;
}

#endif
