/*
 * benches/floor.c: the kernel's floor for fan-out on this machine (issue 14).
 *
 * A minimal writer: N loopback TCP connections; one thread, pinned to SENDER_CPU, writes
 * one pre-framed WebSocket text frame (unmasked, FRAME bytes in all) to every socket with
 * one write() per socket, ROUNDS_PER_SEC rounds a second; a reader, in a child process
 * pinned to READER_CPU, drains every socket with epoll and counts the bytes. Nothing
 * else: no framing per socket, no queue, no wake-ups. Its sender CPU per delivery is what
 * any server pays at least for the same deliveries (on loopback the receive side's
 * kernel work is charged to the sender, as it is for a server measured the same way).
 *
 * The reader is a separate process so each side holds N descriptors (10,000 pairs fit
 * under a 20,000 open-file limit).
 *
 * Usage: floor N SECONDS [ROUNDS_PER_SEC=10] [FRAME=64] [SENDER_CPU=0] [READER_CPU=1]
 * Prints one line of key=value figures; exit 1 if a byte was lost.
 * Build: cc -O2 -o floor benches/floor.c   (benches/run.sh does it)
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

/* The reader: accept n connections, then drain them all until each has sent EOF; write
 * the byte total to `report`. */
static void reader(int listener, int n, int cpu, int report) {
    pin(cpu);
    int ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");
    for (int i = 0; i < n; i++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) die("accept");
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) die("epoll_ctl");
    }
    close(listener);
    uint64_t total = 0;
    int open = n;
    static char buf[1 << 16];
    struct epoll_event evs[256];
    while (open > 0) {
        int k = epoll_wait(ep, evs, 256, -1);
        if (k < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < k; i++) {
            ssize_t r = read(evs[i].data.fd, buf, sizeof buf);
            if (r > 0) {
                total += (uint64_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(evs[i].data.fd);
                open--;
            }
        }
    }
    if (write(report, &total, sizeof total) != sizeof total) die("write report");
    exit(0);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s N SECONDS [ROUNDS_PER_SEC=10] [FRAME=64] [SENDER_CPU=0] [READER_CPU=1]\n", argv[0]);
        return 2;
    }
    int n = atoi(argv[1]);
    double seconds = atof(argv[2]);
    int rate = argc > 3 ? atoi(argv[3]) : 10;
    int frame_len = argc > 4 ? atoi(argv[4]) : 64;
    int sender_cpu = argc > 5 ? atoi(argv[5]) : 0;
    int reader_cpu = argc > 6 ? atoi(argv[6]) : 1;
    if (n <= 0 || seconds <= 0 || rate <= 0 || frame_len < 2 || frame_len > 127) {
        fprintf(stderr, "bad arguments (FRAME is 2..127 bytes: a one-byte length header)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* One frame, built once: FIN + text opcode, unmasked 7-bit length, payload 'x'. */
    char frame[128];
    frame[0] = (char)0x81;
    frame[1] = (char)(frame_len - 2);
    memset(frame + 2, 'x', (size_t)frame_len - 2);

    struct sockaddr_in addr;
    int listener = loopback_listener(&addr);
    int report[2];
    pid_t child = fork_partner(report);
    if (child == 0) {
        reader(listener, n, reader_cpu, report[1]);
    }
    close(listener);
    pin(sender_cpu);

    int *fds = malloc(sizeof(int) * (size_t)n);
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (fds[i] < 0) die("socket (raise the open-file limit?)");
        int one = 1;
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(fds[i], (struct sockaddr *)&addr, sizeof addr) != 0) die("connect");
    }

    /* Steady phase: rounds at `rate` per second for `seconds`. */
    uint64_t sent = 0, rounds = 0;
    double period = 1.0 / rate, start = now_s(), cpu0 = cpu_s(RUSAGE_THREAD);
    double next = start;
    while (now_s() - start < seconds) {
        for (int i = 0; i < n; i++) {
            if (write(fds[i], frame, (size_t)frame_len) != frame_len) die("write");
        }
        sent += (uint64_t)n;
        rounds++;
        next += period;
        double wait = next - now_s();
        if (wait > 0) {
            struct timespec t = {.tv_sec = (time_t)wait, .tv_nsec = (long)((wait - (time_t)wait) * 1e9)};
            nanosleep(&t, NULL);
        }
    }
    double cpu = cpu_s(RUSAGE_THREAD) - cpu0, wall = now_s() - start;
    for (int i = 0; i < n; i++) close(fds[i]);
    uint64_t got = 0;
    if (read(report[0], &got, sizeof got) != sizeof got) die("read report");
    waitpid(child, NULL, 0);
    uint64_t delivered = got / (uint64_t)frame_len;
    printf("floor sockets=%d rounds=%llu frame_bytes=%d sent=%llu delivered=%llu lost=%lld "
           "wall_s=%.2f sender_cpu_s=%.3f sender_cores=%.3f us_per_delivery=%.3f "
           "deliveries_per_cpu_second=%.0f\n",
           n, (unsigned long long)rounds, frame_len, (unsigned long long)sent, (unsigned long long)delivered,
           (long long)sent - (long long)delivered, wall, cpu, cpu / wall, cpu * 1e6 / (double)sent,
           (double)sent / cpu);
    return delivered == sent && got % (uint64_t)frame_len == 0 ? 0 : 1;
}
