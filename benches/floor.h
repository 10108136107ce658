/*
 * benches/floor.h: what the kernel-floor benchmarks (floor.c, ping_floor.c) share:
 * failing loudly, pinning to a core, and the clocks they measure with.
 */
#ifndef RTC_BENCH_FLOOR_H
#define RTC_BENCH_FLOOR_H

#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

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

#endif
