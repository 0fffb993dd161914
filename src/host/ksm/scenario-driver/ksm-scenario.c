/*
 * ksm-scenario: runs one KSM scenario on a real kernel (the emulated machine's, or a physical host's for
 * `nuksm trace record`) and records the kernel's state at every point the reference model is compared at.
 * Built static on the machine running nuksm and copied to the target (index.ts beside this file).
 *
 * Script (stdin), one command per line:
 *   knob <name> <value>                   written to /sys/kernel/mm/ksm/<name> before anything starts
 *   proc <i> <node> <content> ...         instance i: one page per content id (ids > 0; equal ids =
 *                                         identical pages), bound to <node> (affinity + MPOL_BIND)
 *   register <i>                          before KSM starts: fork instance i, fill, madvise(MERGEABLE)
 *   at pass <n> <action>                  when full_scans reaches start + n (ksmd stopped meanwhile)
 *   at batch <k> <action>                 after ksmd's k-th batch (a pinned cursor: k x pages_to_scan
 *                                         pages into the first pass, for instance)
 *   end <n>                               stop after the snapshot at pass n
 * Actions: register <i> | write <i> <page> <content> | exit <i>
 *
 * ksmd is stepped one batch at a time (ksmd_step: sleep_millisecs huge, each change of it wakes ksmd
 * for one batch), so every stop is exact whatever the machine's speed: after each batch, at a
 * full_scans increment or a pinned rmap_item count, the counters and every live instance's pagemap
 * pfn + kpageflags KSM bit are printed and the actions run while ksmd sleeps.
 *
 * Output (stdout), one JSON object per line:
 *   {"t":"reg","i":..,"pid":..,"pfn":[..]}           pfns right after registering (the pages' owners)
 *   {"t":"write","i":..,"page":..,"content":..,"pfn":..}
 *   {"t":"exit","i":..}
 *   {"t":"snap","at":"pass"|"batch","n":..,"b":<batches so far>,"c":{counter:value,..},
 *    "procs":[{"i":..,"pfn":[..],"kpf":["<kpageflags hex>",..],"cnt":[<kpagecount>,..]}]}
 *   {"t":"end"} | {"t":"error","why":".."}
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXP 16
#define MAXPAGES 4096
#define MAXEV 256
#define PAGE 4096
#define KSM "/sys/kernel/mm/ksm/"

static pid_t children[64];
static int nchildren;
static pid_t parent_pid;

static void fail(const char *why) {
  printf("{\"t\":\"error\",\"why\":\"%s: %s\"}\n", why, strerror(errno));
  fflush(stdout);
  if (getpid() == parent_pid)
    for (int k = 0; k < nchildren; k++) kill(children[k], SIGKILL);
  exit(2);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long read_knob(const char *name) {
  char path[256], buf[64];
  snprintf(path, sizeof path, KSM "%s", name);
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  return strtol(buf, NULL, 10);
}

static void write_knob(const char *name, const char *value) {
  char path[256];
  snprintf(path, sizeof path, KSM "%s", name);
  int fd = open(path, O_WRONLY);
  if (fd < 0) fail(name);
  if (write(fd, value, strlen(value)) < 0) fail(name);
  close(fd);
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void fill(uint64_t *page, uint32_t content) {
  uint64_t s = content;
  for (int w = 0; w < PAGE / 8; w++) page[w] = splitmix(&s);
}

static long pfn_of(int pagemap_fd, uintptr_t addr) {
  uint64_t e;
  if (pread(pagemap_fd, &e, 8, (off_t)(addr / PAGE) * 8) != 8) return -2;
  if (!(e >> 63)) return -1;
  return (long)(e & ((1ULL << 55) - 1));
}

struct proc {
  int node, npages, live;
  uint32_t content[MAXPAGES];
  pid_t pid;
  int cmd, ack; /* pipes to / from the child */
  uintptr_t addr;
};
static struct proc procs[MAXP];

struct event {
  int batch; /* 0 = at pass */
  long n;
  char action[16];
  int i, page;
  uint32_t content;
};
static struct event evs[MAXEV];
static int nev;

static void bind_node(int node) {
  char path[128];
  snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node);
  FILE *f = fopen(path, "r");
  if (!f) fail("cpulist");
  cpu_set_t set;
  CPU_ZERO(&set);
  int a, b;
  if (fscanf(f, "%d", &a) != 1) fail("cpulist parse");
  b = a;
  if (fgetc(f) == '-' && fscanf(f, "%d", &b) != 1) b = a;
  fclose(f);
  for (int c = a; c <= b; c++) CPU_SET(c, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) fail("sched_setaffinity");
  unsigned long mask[4] = {0};
  mask[node / 64] = 1UL << (node % 64);
  if (syscall(SYS_set_mempolicy, 2 /* MPOL_BIND */, mask, 256UL) != 0) fail("set_mempolicy");
}

/* Child: fill, register, report pfns; then obey "w <page> <content>" and "x" on its command pipe. */
static void child(struct proc *p) {
  /* Only its own pipes: the parent's stdout (the SSH channel) and other children's pipes stay out. */
  int devnull = open("/dev/null", O_RDWR);
  dup2(devnull, 0);
  dup2(devnull, 1);
  for (int fd = 3; fd < 256; fd++)
    if (fd != p->cmd && fd != p->ack) close(fd);
  bind_node(p->node);
  size_t bytes = (size_t)p->npages * PAGE;
  uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) fail("mmap");
  madvise(m, bytes, MADV_NOHUGEPAGE);
  for (int k = 0; k < p->npages; k++) fill((uint64_t *)(m + (size_t)k * PAGE), p->content[k]);
  if (madvise(m, bytes, MADV_MERGEABLE) != 0) fail("madvise");
  uintptr_t a = (uintptr_t)m;
  if (write(p->ack, &a, sizeof a) != sizeof a) fail("ack");
  for (;;) {
    int32_t cmd[3];
    if (read(p->cmd, cmd, sizeof cmd) != sizeof cmd) _exit(0);
    if (cmd[0] == 'x') _exit(0);
    fill((uint64_t *)(m + (size_t)cmd[1] * PAGE), (uint32_t)cmd[2]);
    if (write(p->ack, &a, sizeof a) != sizeof a) fail("ack");
  }
}

static int kpagecount_fd = -1;
static void print_pfns(struct proc *p, int with_ksm, int kpf) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/pagemap", p->pid);
  int fd = open(path, O_RDONLY);
  if (fd < 0) fail("pagemap");
  static long pfns[MAXPAGES];
  printf("\"pfn\":[");
  for (int k = 0; k < p->npages; k++) {
    pfns[k] = pfn_of(fd, p->addr + (uintptr_t)k * PAGE);
    printf(k ? ",%ld" : "%ld", pfns[k]);
  }
  printf("]");
  close(fd);
  if (!with_ksm) return;
  /* Full kpageflags word and kpagecount (mapcount) per page: KPF_KSM alone is not reliable on every kernel. */
  printf(",\"kpf\":[");
  for (int k = 0; k < p->npages; k++) {
    uint64_t flags = 0, count = 0;
    if (pfns[k] > 0 && pread(kpf, &flags, 8, (off_t)pfns[k] * 8) != 8) fail("kpageflags");
    printf(k ? ",\"%llx\"" : "\"%llx\"", (unsigned long long)flags);
    (void)count;
  }
  printf("],\"cnt\":[");
  for (int k = 0; k < p->npages; k++) {
    uint64_t count = 0;
    if (pfns[k] > 0 && pread(kpagecount_fd, &count, 8, (off_t)pfns[k] * 8) != 8) fail("kpagecount");
    printf(k ? ",%llu" : "%llu", (unsigned long long)count);
  }
  printf("]");
}

static void do_register(int i) {
  struct proc *p = &procs[i];
  int c[2], a[2];
  if (pipe(c) || pipe(a)) fail("pipe");
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) fail("fork");
  if (pid == 0) {
    p->cmd = c[0];
    p->ack = a[1];
    child(p);
  }
  children[nchildren++] = pid;
  close(c[0]);
  close(a[1]);
  p->pid = pid;
  p->cmd = c[1];
  p->ack = a[0];
  if (read(p->ack, &p->addr, sizeof p->addr) != sizeof p->addr) fail("child did not register");
  p->live = 1;
  printf("{\"t\":\"reg\",\"i\":%d,\"pid\":%d,\"node\":%d,", i, pid, p->node);
  print_pfns(p, 0, -1);
  printf("}\n");
}

static void do_action(struct event *e, int kpf) {
  struct proc *p = &procs[e->i];
  if (!strcmp(e->action, "register")) do_register(e->i);
  else if (!strcmp(e->action, "write")) {
    int32_t cmd[3] = {'w', e->page, (int32_t)e->content};
    uintptr_t a;
    if (write(p->cmd, cmd, sizeof cmd) != sizeof cmd || read(p->ack, &a, sizeof a) != sizeof a) fail("write");
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/pagemap", p->pid);
    int fd = open(path, O_RDONLY);
    printf("{\"t\":\"write\",\"i\":%d,\"page\":%d,\"content\":%u,\"pfn\":%ld}\n", e->i, e->page, e->content, pfn_of(fd, p->addr + (uintptr_t)e->page * PAGE));
    close(fd);
  } else if (!strcmp(e->action, "exit")) {
    int32_t cmd[3] = {'x', 0, 0};
    if (write(p->cmd, cmd, sizeof cmd) != sizeof cmd) fail("exit");
    waitpid(p->pid, NULL, 0);
    p->live = 0;
    printf("{\"t\":\"exit\",\"i\":%d}\n", e->i);
  }
  (void)kpf;
}

static const char *COUNTERS[] = {"pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "full_scans", "pages_skipped", "stable_node_chains", "stable_node_dups", "ksm_zero_pages", NULL};

static long batches;
/* pages_skipped is cumulative since boot (smart scan, 6.7+): counted from the run's start, like full_scans. */
static long skipped0;
static void snapshot(const char *at, long n, long full0, int kpf) {
  printf("{\"t\":\"snap\",\"at\":\"%s\",\"n\":%ld,\"b\":%ld,\"c\":{", at, n, batches);
  int first = 1;
  for (const char **c = COUNTERS; *c; c++) {
    long v = read_knob(*c);
    if (v < 0) continue;
    if (!strcmp(*c, "full_scans")) v -= full0;
    if (!strcmp(*c, "pages_skipped")) v -= skipped0;
    printf("%s\"%s\":%ld", first ? "" : ",", *c, v);
    first = 0;
  }
  printf("},\"procs\":[");
  first = 1;
  for (int i = 0; i < MAXP; i++) {
    if (!procs[i].live) continue;
    printf("%s{\"i\":%d,", first ? "" : ",", i);
    print_pfns(&procs[i], 1, kpf);
    printf("}");
    first = 0;
  }
  printf("]}\n");
}

/* ksmd's pid: the task whose comm is "ksmd" (every /proc entry: pids are not bounded on a large host). */
static int ksmd_pid(void) {
  char path[300], comm[32];
  DIR *d = opendir("/proc");
  if (!d) fail("/proc");
  struct dirent *e;
  while ((e = readdir(d))) {
    int pid = atoi(e->d_name);
    if (pid <= 0) continue;
    snprintf(path, sizeof path, "/proc/%d/comm", pid);
    FILE *f = fopen(path, "r");
    if (!f) continue;
    int ok = fgets(comm, sizeof comm, f) && !strcmp(comm, "ksmd\n");
    fclose(f);
    if (ok) {
      closedir(d);
      return pid;
    }
  }
  closedir(d);
  errno = ESRCH;
  fail("no ksmd thread");
  return -1;
}

/* ksmd's state letter and voluntary context switches (/proc/PID/status). */
static void ksmd_status(int pid, char *state, long *vcsw) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f) fail("ksmd status");
  *state = '?';
  *vcsw = -1;
  while (fgets(line, sizeof line, f)) {
    if (!strncmp(line, "State:", 6)) sscanf(line + 6, " %c", state);
    else if (!strncmp(line, "voluntary_ctxt_switches:", 24)) *vcsw = strtol(line + 24, NULL, 10);
  }
  fclose(f);
}

/*
 * One ksmd batch (ksm_do_scan(pages_to_scan)): ksmd sleeps sleep_millisecs (set huge) in
 * wait_event_*_timeout(ksm_iter_wait, sleep_ms != ksm_thread_sleep_millisecs); writing a different
 * value wakes it for exactly one batch, after which it sleeps again (state S, one more voluntary
 * switch). Its other sleeps inside a batch (mutexes, lru_add_drain_all) are uninterruptible (D).
 */
static int toggle;
static void ksmd_step(int pid, const char *first_write_knob, const char *first_value) {
  char st;
  long v0, v;
  ksmd_status(pid, &st, &v0);
  if (first_write_knob) write_knob(first_write_knob, first_value);
  else write_knob("sleep_millisecs", (toggle ^= 1) ? "3600001" : "3600000");
  double until = now_s() + 120;
  for (;;) {
    usleep(200);
    ksmd_status(pid, &st, &v);
    if (st == 'S' && v > v0) return;
    if (now_s() > until) {
      errno = ETIMEDOUT;
      fail("ksmd did not finish a batch in 120 s");
    }
  }
}

int main(void) {
  static char line[1 << 16];
  long end = -1;
  int kpf = open("/proc/kpageflags", O_RDONLY);
  if (kpf < 0) fail("kpageflags");
  kpagecount_fd = open("/proc/kpagecount", O_RDONLY);
  if (kpagecount_fd < 0) fail("kpagecount");
  setvbuf(stdout, NULL, _IOLBF, 0);
  parent_pid = getpid();
  write_knob("run", "0");
  int reg[MAXP], nreg = 0;
  while (fgets(line, sizeof line, stdin)) {
    char *tok = strtok(line, " \n");
    if (!tok) continue;
    if (!strcmp(tok, "knob")) {
      char *name = strtok(NULL, " \n"), *value = strtok(NULL, " \n");
      if (!name || !value) fail("knob line");
      write_knob(name, value);
    } else if (!strcmp(tok, "proc")) {
      int i = atoi(strtok(NULL, " \n"));
      if (i < 0 || i >= MAXP) fail("proc index");
      procs[i].node = atoi(strtok(NULL, " \n"));
      char *c;
      while ((c = strtok(NULL, " \n")) && procs[i].npages < MAXPAGES) procs[i].content[procs[i].npages++] = (uint32_t)strtoul(c, NULL, 10);
    } else if (!strcmp(tok, "register")) {
      reg[nreg++] = atoi(strtok(NULL, " \n"));
    } else if (!strcmp(tok, "at")) {
      struct event *e = &evs[nev++];
      e->batch = !strcmp(strtok(NULL, " \n"), "batch");
      e->n = atol(strtok(NULL, " \n"));
      snprintf(e->action, sizeof e->action, "%s", strtok(NULL, " \n"));
      e->i = atoi(strtok(NULL, " \n"));
      if (!strcmp(e->action, "write")) {
        e->page = atoi(strtok(NULL, " \n"));
        e->content = (uint32_t)strtoul(strtok(NULL, " \n"), NULL, 10);
      }
    } else if (!strcmp(tok, "end")) {
      end = atol(strtok(NULL, " \n"));
    } else fail("unknown script line");
  }
  if (end < 1) fail("no end");
  for (int k = 0; k < nreg; k++) do_register(reg[k]);
  int ksmd = ksmd_pid();
  /*
   * ksmd may still sleep in ksm_iter_wait from an earlier run (run=1 alone does not wake it there):
   * with run=0, a changed sleep_millisecs wakes it and it goes to wait for run (ksm_thread_wait).
   */
  write_knob("sleep_millisecs", read_knob("sleep_millisecs") == 3600000 ? "3600001" : "3600000");
  toggle = read_knob("sleep_millisecs") == 3600001;
  usleep(1000000);
  long full0 = read_knob("full_scans");
  skipped0 = read_knob("pages_skipped");
  if (skipped0 < 0) skipped0 = 0;
  snapshot("pass", 0, full0, kpf);
  long pass = 0, pass_acted = 0;
  double deadline = now_s() + 600;
  ksmd_step(ksmd, "run", "1");
  for (;;) {
    batches++;
    if (now_s() > deadline) {
      errno = ETIMEDOUT;
      fail("scenario deadline");
    }
    long f = read_knob("full_scans") - full0;
    if (f > pass) {
      if (f != pass + 1) {
        errno = EINVAL;
        fail("one batch ended two passes");
      }
      pass = f;
      snapshot("pass", pass, full0, kpf);
      if (pass >= end) break;
    }
    int at_batch = 0;
    for (int k = 0; k < nev; k++)
      if (evs[k].batch && evs[k].n == batches) at_batch = 1;
    if (at_batch) snapshot("batch", batches, full0, kpf);
    for (int k = 0; k < nev; k++)
      if (evs[k].batch ? evs[k].n == batches : evs[k].n == pass && f == pass && pass_acted < pass) do_action(&evs[k], kpf);
    pass_acted = pass;
    ksmd_step(ksmd, NULL, NULL);
  }
  write_knob("run", "0");
  for (int i = 0; i < MAXP; i++)
    if (procs[i].live) {
      kill(procs[i].pid, SIGKILL);
      waitpid(procs[i].pid, NULL, 0);
    }
  printf("{\"t\":\"end\"}\n");
  return 0;
}
