/*
 * nuksm native workloads: small stand-ins for the paper's benchmarks in bare-metal mode.
 * Each instance binds itself to one NUMA node (CPU affinity + MPOL_BIND), maps its footprint,
 * registers it with KSM (madvise(MADV_MERGEABLE) or prctl(PR_SET_MEMORY_MERGE)), fills it with
 * content that depends only on --seed (identical across instances, so KSM can merge them), waits
 * --hold-s seconds (or until --go-file exists) for KSM, runs a read-only kernel over the data for --iterations, then prints
 *   NUKSM_RESULT workload=<k> runtime_s=<s> checksum=<hex> footprint_mib=<n> node=<n> pid=<p>
 * and keeps its memory for --linger-s seconds or until --done-file exists (placement read-outs
 * happen meanwhile).
 * Kernels: randomaccess (random 8-byte reads), btree (lookups in an implicit sorted tree),
 * cg (sparse matrix-vector products), xsbench (binary search + interpolation over grids).
 * memhog: adds --step-mib of unique, KSM-registered memory every --period-s up to --max-mib and
 * prints NUKSM_HOG t_s=<s> registered_mib=<n> after each step.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_MERGEABLE
#define MADV_MERGEABLE 12
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#endif
#define MPOL_BIND 2
/* Set by the build (a hash of this source), so an install can tell a stale prebuilt binary. */
#ifndef NUKSM_NATIVE_VERSION
#define NUKSM_NATIVE_VERSION "unversioned"
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void die(const char *what) {
  fprintf(stderr, "nuksm-native: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void bind_to_node(int node) {
  char path[128];
  snprintf(path, sizeof path, "/sys/devices/system/node/node%d/cpulist", node);
  FILE *f = fopen(path, "r");
  if (!f) die("node cpulist");
  cpu_set_t set;
  CPU_ZERO(&set);
  int a, b;
  char sep;
  while (fscanf(f, "%d", &a) == 1) {
    b = a;
    if (fscanf(f, "%c", &sep) == 1 && sep == '-') {
      if (fscanf(f, "%d", &b) != 1) break;
      if (fscanf(f, "%c", &sep) != 1) sep = '\n';
    }
    for (int c = a; c <= b; c++) CPU_SET(c, &set);
    if (sep != ',') break;
  }
  fclose(f);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
  unsigned long mask[4] = {0};
  mask[node / 64] = 1UL << (node % 64);
  if (syscall(SYS_set_mempolicy, MPOL_BIND, mask, 256UL) != 0) die("set_mempolicy");
}

static uint64_t *map_registered(size_t bytes, const char *merge) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) die("mmap");
  if (strcmp(merge, "madvise") == 0) {
    if (madvise(p, bytes, MADV_MERGEABLE) != 0) die("madvise(MADV_MERGEABLE)");
  } else if (strcmp(merge, "none") != 0) {
    /* prctl registration is process-wide and done once in main. */
  }
  return p;
}

static uint64_t run_kernel(const char *k, uint64_t *d, size_t n, long iters, uint64_t seed) {
  uint64_t sum = 0, s = seed ^ 0x5151;
  if (strcmp(k, "randomaccess") == 0) {
    for (long i = 0; i < iters * (long)n / 8; i++) sum += d[splitmix(&s) % n];
  } else if (strcmp(k, "btree") == 0) {
    /* d is sorted ascending (filled that way): a binary-search "tree" lookup per key. */
    for (long i = 0; i < iters * (long)n / 64; i++) {
      uint64_t key = d[splitmix(&s) % n];
      size_t lo = 0, hi = n;
      while (lo < hi) { size_t mid = (lo + hi) / 2; if (d[mid] < key) lo = mid + 1; else hi = mid; }
      sum += lo;
    }
  } else if (strcmp(k, "cg") == 0) {
    /* First half: values + column indices of a banded sparse matrix; a small vector on the stack. */
    double x[4096];
    for (int i = 0; i < 4096; i++) x[i] = 1.0 / (i + 1);
    size_t nnz = n / 2;
    for (long it = 0; it < iters; it++) {
      double acc = 0;
      for (size_t j = 0; j < nnz; j++) acc += (double)(d[j] & 0xffff) * x[d[nnz + j] & 4095];
      sum += (uint64_t)acc;
      x[it & 4095] += 1e-9;
    }
  } else if (strcmp(k, "xsbench") == 0) {
    /* Sorted energy grid (even words) with cross sections (odd words): lookup + interpolation. */
    size_t pts = n / 2;
    for (long i = 0; i < iters * (long)pts / 16; i++) {
      uint64_t e = d[2 * (splitmix(&s) % pts)] + 1;
      size_t lo = 0, hi = pts;
      while (lo < hi) { size_t mid = (lo + hi) / 2; if (d[2 * mid] < e) lo = mid + 1; else hi = mid; }
      if (lo >= pts) lo = pts - 1;
      sum += d[2 * lo + 1] >> 8;
    }
  } else {
    fprintf(stderr, "nuksm-native: unknown workload '%s'\n", k);
    exit(2);
  }
  return sum;
}

static void fill(const char *k, uint64_t *d, size_t n, uint64_t seed) {
  uint64_t s = seed;
  if (strcmp(k, "btree") == 0 || strcmp(k, "xsbench") == 0) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
      if (strcmp(k, "xsbench") == 0 && (i & 1)) { d[i] = splitmix(&s); continue; }
      v += 1 + splitmix(&s) % 1000;
      d[i] = v;
    }
  } else {
    for (size_t i = 0; i < n; i++) d[i] = splitmix(&s);
  }
}

static void sleep_s(double s) {
  if (s <= 0) return;
  struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Without a file: sleep s. With one: poll until it exists, at most s seconds (0 = no limit). */
static void wait_for(const char *file, double s) {
  if (!file) { sleep_s(s); return; }
  double t0 = now_s();
  while (access(file, F_OK) != 0 && (s <= 0 || now_s() - t0 < s)) sleep_s(0.05);
}

int main(int argc, char **argv) {
  const char *workload = "randomaccess", *merge = "madvise";
  long footprint_mib = 64, iterations = 4, node = -1, step_mib = 16, max_mib = 128;
  double hold_s = 0, linger_s = 0, period_s = 5;
  const char *go_file = NULL, *done_file = NULL;
  uint64_t seed = 42;
  if (argc == 2 && !strcmp(argv[1], "--version")) {
    printf("nuksm-native %s\n", NUKSM_NATIVE_VERSION);
    return 0;
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *o = argv[i], *v = argv[i + 1];
    if (!strcmp(o, "--workload")) workload = v;
    else if (!strcmp(o, "--merge")) merge = v;
    else if (!strcmp(o, "--footprint-mib")) footprint_mib = atol(v);
    else if (!strcmp(o, "--iterations")) iterations = atol(v);
    else if (!strcmp(o, "--node")) node = atol(v);
    else if (!strcmp(o, "--seed")) seed = strtoull(v, NULL, 10);
    else if (!strcmp(o, "--hold-s")) hold_s = atof(v);
    else if (!strcmp(o, "--linger-s")) linger_s = atof(v);
    else if (!strcmp(o, "--step-mib")) step_mib = atol(v);
    else if (!strcmp(o, "--max-mib")) max_mib = atol(v);
    else if (!strcmp(o, "--period-s")) period_s = atof(v);
    else if (!strcmp(o, "--go-file")) go_file = v;
    else if (!strcmp(o, "--done-file")) done_file = v;
    else { fprintf(stderr, "nuksm-native: unknown option %s\n", o); return 2; }
  }
  if (strcmp(merge, "madvise") && strcmp(merge, "prctl") && strcmp(merge, "none")) {
    fprintf(stderr, "nuksm-native: --merge must be madvise, prctl or none\n");
    return 2;
  }
  if (node >= 0) bind_to_node((int)node);
  if (!strcmp(merge, "prctl") && prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) != 0) die("prctl(PR_SET_MEMORY_MERGE)");
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!strcmp(workload, "memhog")) {
    /* Unique content per process and step: nothing here can merge with anything. */
    uint64_t s = seed ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(now_s() * 1e6);
    double t0 = now_s();
    for (long done = 0; done + step_mib <= max_mib; done += step_mib) {
      size_t bytes = (size_t)step_mib << 20;
      uint64_t *p = map_registered(bytes, merge);
      for (size_t i = 0; i < bytes / 8; i++) p[i] = splitmix(&s);
      printf("NUKSM_HOG t_s=%.3f registered_mib=%ld\n", now_s() - t0, done + step_mib);
      sleep_s(period_s);
    }
    sleep_s(linger_s);
    return 0;
  }
  size_t bytes = (size_t)footprint_mib << 20, n = bytes / 8;
  uint64_t *d = map_registered(bytes, merge);
  fill(workload, d, n, seed);
  printf("NUKSM_READY workload=%s pid=%d\n", workload, (int)getpid());
  wait_for(go_file, hold_s);
  double t0 = now_s();
  uint64_t sum = run_kernel(workload, d, n, iterations, seed);
  double runtime = now_s() - t0;
  printf("NUKSM_RESULT workload=%s runtime_s=%.6f checksum=%016llx footprint_mib=%ld node=%ld pid=%d\n", workload, runtime,
         (unsigned long long)sum, footprint_mib, node, (int)getpid());
  wait_for(done_file, linger_s);
  return 0;
}
