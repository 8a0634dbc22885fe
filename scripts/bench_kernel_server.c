/*
 * The kernel-side reference server for `deno task bench:stack`: echo (7), discard (9) and chargen (19) on
 * the Linux kernel's own TCP, in C with epoll, so that what the bench compares netstack with is the
 * kernel and not a runtime's per-operation cost (a Deno server here did 8-12k request/response
 * transactions/s and ~550 connections/s; the kernel does several times that). The bench compiles it with
 * the machine's cc at run time.
 *
 * Usage: bench_kernel_server WORKERS. It listens on the three ports, forks WORKERS-1 more processes that
 * share the listening sockets (each with its own epoll, accepting while it has descriptors to spare: a
 * process may hold only RLIMIT_NOFILE of them, and the memory rows hold 100,000 connections), prints
 * "ready PID PID ..." and serves until killed. Children die with the parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

enum { NONE = 0, LISTEN_ECHO, LISTEN_DISCARD, LISTEN_CHARGEN, ECHO, DISCARD, CHARGEN };

static const int PORTS[3] = {7, 9, 19};
static int listeners[3];
static int epfd;
static unsigned char *kind;   /* per descriptor */
static char **pending;        /* echo: bytes not yet written back, per descriptor */
static size_t *pendingLen;
static unsigned char *closing; /* echo: the peer closed; close once pending is written */
static int limit;             /* descriptors this process may hold */
static int open_fds;
static int accepting = 1;
static char buf[1 << 18];
static char chargen[1 << 18];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static void watch(int fd, unsigned events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(epfd, op, fd, &ev) < 0 && op != EPOLL_CTL_DEL) die("epoll_ctl");
}

static void set_accepting(int on) {
  if (on == accepting) return;
  accepting = on;
  for (int i = 0; i < 3; i++) {
    if (on) watch(listeners[i], EPOLLIN | EPOLLEXCLUSIVE, EPOLL_CTL_ADD);
    else epoll_ctl(epfd, EPOLL_CTL_DEL, listeners[i], NULL);
  }
}

static void drop(int fd) {
  close(fd);
  free(pending[fd]);
  pending[fd] = NULL;
  pendingLen[fd] = 0;
  closing[fd] = 0;
  kind[fd] = NONE;
  open_fds--;
  if (!accepting && open_fds < limit - 256) set_accepting(1);
}

static void accept_all(int lfd, int k) {
  while (accepting) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return; /* EAGAIN, or a connection reset before accept */
    if (fd >= limit) {
      close(fd);
      continue;
    }
    open_fds++;
    kind[fd] = k;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    watch(fd, k == CHARGEN ? EPOLLOUT : EPOLLIN, EPOLL_CTL_ADD);
    if (open_fds >= limit - 128) set_accepting(0);
  }
}

/* Writes what echo owes; returns 0 when all is written, 1 when the socket is full, -1 on error. */
static int flush(int fd) {
  while (pendingLen[fd] > 0) {
    ssize_t n = write(fd, pending[fd], pendingLen[fd]);
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    memmove(pending[fd], pending[fd] + n, pendingLen[fd] - n);
    pendingLen[fd] -= n;
  }
  return 0;
}

static void on_echo(int fd, unsigned events) {
  if (pendingLen[fd] > 0) {
    int r = flush(fd);
    if (r < 0 || (r == 0 && closing[fd])) return drop(fd);
    if (r == 1) return;
    watch(fd, EPOLLIN, EPOLL_CTL_MOD);
    return;
  }
  if (events & (EPOLLERR)) return drop(fd);
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return drop(fd);
    if (n < 0) {
      if (errno != EAGAIN) drop(fd);
      return;
    }
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno != EAGAIN) return drop(fd);
    if (w < 0) w = 0;
    if (w < n) {
      pending[fd] = realloc(pending[fd], n - w);
      memcpy(pending[fd], buf + w, n - w);
      pendingLen[fd] = n - w;
      watch(fd, EPOLLOUT, EPOLL_CTL_MOD);
      return;
    }
    if ((size_t)n < sizeof buf) return;
  }
}

static void on_discard(int fd) {
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno != EAGAIN)) return drop(fd);
    if (n < 0) return;
  }
}

static void on_chargen(int fd, unsigned events) {
  if (events & (EPOLLERR | EPOLLHUP)) return drop(fd);
  for (;;) {
    ssize_t n = write(fd, chargen, sizeof chargen);
    if (n < 0) {
      if (errno != EAGAIN) drop(fd);
      return;
    }
  }
}

static void serve(void) {
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1");
  accepting = 0;
  set_accepting(1);
  struct epoll_event events[256];
  for (;;) {
    int n = epoll_wait(epfd, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      unsigned ev = events[i].events;
      switch (kind[fd]) {
        case LISTEN_ECHO: accept_all(fd, ECHO); break;
        case LISTEN_DISCARD: accept_all(fd, DISCARD); break;
        case LISTEN_CHARGEN: accept_all(fd, CHARGEN); break;
        case ECHO: on_echo(fd, ev); break;
        case DISCARD: on_discard(fd); break;
        case CHARGEN: on_chargen(fd, ev); break;
        default: break;
      }
    }
  }
}

int main(int argc, char **argv) {
  int workers = argc > 1 ? atoi(argv[1]) : 1;
  if (workers < 1 || workers > 64) {
    fprintf(stderr, "usage: bench_kernel_server WORKERS (1..64)\n");
    return 2;
  }
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  limit = (int)(rl.rlim_cur > 1 << 20 ? 1 << 20 : rl.rlim_cur);
  kind = calloc(limit, 1);
  closing = calloc(limit, 1);
  pending = calloc(limit, sizeof *pending);
  pendingLen = calloc(limit, sizeof *pendingLen);
  memset(chargen, 'x', sizeof chargen);
  signal(SIGPIPE, SIG_IGN);
  for (int i = 0; i < 3; i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(PORTS[i])};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) die("bind");
    if (listen(fd, 4096) < 0) die("listen");
    listeners[i] = fd;
    kind[fd] = LISTEN_ECHO + i;
    open_fds++;
  }
  open_fds += 4; /* stdin, stdout, stderr, epoll */
  pid_t parent = getpid();
  printf("ready %d", (int)parent);
  for (int w = 1; w < workers; w++) {
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(0);
      serve();
    }
    printf(" %d", (int)pid);
  }
  printf("\n");
  fflush(stdout);
  serve();
  return 0;
}
