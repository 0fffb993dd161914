/*
 * nuksm-move-pages: moves pages of other processes between NUMA nodes with move_pages(2) and
 * MPOL_MF_MOVE_ALL, for the user-space placement engine (src/host/placement). MOVE_ALL migrates a page
 * even when other processes map it too, which KSM pages always are; a KSM page migrates as a KSM page
 * (it stays merged: pages_sharing is unchanged and every sharer maps the new copy). Nothing here writes
 * to a page or calls madvise, so it never unmerges. Needs CAP_SYS_NICE over the target processes (root).
 *
 * stdin: one request per line, "<pid> <hex address> <target node>"; lines of one pid are batched.
 * stdout: one line per request, "<pid> <hex address> <status>" in input order: status is the node the
 *   page is on after the call, or a negative errno (move_pages' per-page status, e.g. -14 EFAULT,
 *   -16 EBUSY, -2 ENOENT); a failed call for a whole batch gives its errno on each of its pages.
 * last line: "NUKSM_MOVE requests=<n> moved=<m> failed=<f> cpu_s=<user+system CPU of this process>".
 * --version prints the source hash the build embeds (like nuksm-native).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MPOL_MF_MOVE_ALL
#define MPOL_MF_MOVE_ALL (1 << 2)
#endif
#ifndef NUKSM_NATIVE_VERSION
#define NUKSM_NATIVE_VERSION "unversioned"
#endif
#define BATCH 4096

struct req {
  long pid;
  uintptr_t addr;
  int node;
  int status;
};

static long moved, failed;

static void flush(struct req *r, size_t n) {
  if (n == 0) return;
  void *pages[BATCH];
  int nodes[BATCH], status[BATCH];
  for (size_t i = 0; i < n; i++) {
    pages[i] = (void *)r[i].addr;
    nodes[i] = r[i].node;
    status[i] = -EINVAL;
  }
  long rc = syscall(SYS_move_pages, (int)r[0].pid, (unsigned long)n, pages, nodes, status, MPOL_MF_MOVE_ALL);
  int err = rc < 0 ? -errno : 0;
  for (size_t i = 0; i < n; i++) {
    r[i].status = err ? err : status[i];
    if (r[i].status == r[i].node) moved++;
    else failed++;
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--version")) {
    printf("%s\n", NUKSM_NATIVE_VERSION);
    return 0;
  }
  size_t cap = 1024, n = 0;
  struct req *all = malloc(cap * sizeof *all);
  if (!all) return 2;
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    long pid;
    unsigned long long addr;
    int node;
    if (sscanf(line, "%ld %llx %d", &pid, &addr, &node) != 3) {
      fprintf(stderr, "nuksm-move-pages: bad request line: %s", line);
      return 2;
    }
    if (n == cap) {
      cap *= 2;
      all = realloc(all, cap * sizeof *all);
      if (!all) return 2;
    }
    all[n++] = (struct req){pid, (uintptr_t)addr, node, 0};
  }
  /* Consecutive requests of one pid go in one call (up to BATCH pages). */
  size_t start = 0;
  for (size_t i = 1; i <= n; i++) {
    if (i == n || all[i].pid != all[start].pid || i - start == BATCH) {
      flush(all + start, i - start);
      start = i;
    }
  }
  for (size_t i = 0; i < n; i++) printf("%ld %llx %d\n", all[i].pid, (unsigned long long)all[i].addr, all[i].status);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("NUKSM_MOVE requests=%zu moved=%ld failed=%ld cpu_s=%.6f\n", n, moved, failed, cpu);
  return 0;
}
