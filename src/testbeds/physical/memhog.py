#!/usr/bin/env python3
"""Fig. 8 memory hog: every EVERY_S seconds, map STEP_BYTES of anonymous memory, make every page
unique (so KSM scans it but cannot merge it), register it with madvise(MADV_MERGEABLE), up to
MAX_BYTES; then hold it until killed. Prints "registered <bytes>" after each step (the harness
turns that into hog_registered_gib). Run bound to a node with numactl --membind/--cpunodebind.
usage: memhog.py STEP_BYTES EVERY_S MAX_BYTES SEED"""
import mmap, struct, sys, time

step, every, limit, seed = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
page = mmap.PAGESIZE
regions, registered = [], 0
print("registered 0", flush=True)
while registered < limit:
    size = min(step, limit - registered)
    size -= size % page
    if size <= 0:
        break
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    base = registered // page
    for i in range(size // page):
        # Distinct first 16 bytes per page (seed, global page index): no two pages are equal.
        struct.pack_into("QQ", m, i * page, seed, base + i)
    m.madvise(mmap.MADV_MERGEABLE)
    regions.append(m)
    registered += size
    print("registered %d" % registered, flush=True)
    time.sleep(every)
while True:
    time.sleep(3600)
