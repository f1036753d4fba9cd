#!/usr/bin/python3
"""Where a durable SET's CPU goes: groups a perf profile of halyard into the write path's
stages (docs/performance.md).

    bench/write_path.sh /abs/path/to/halyard --perf DIR     records DIR/set-P1.data, set-P16.data
    bench/perf_categories.py DIR/set-P16.data               prints the share of each stage

Each sample (cpu-clock, DWARF call graph) is given the stage of the leafmost frame of its
stack that RULES names; samples of processes other than the server's main and WAL threads are
its forked snapshot encoders. Shares are of all the samples recorded, so they add up to 100%.
"""
import collections
import subprocess
import sys

# (stage, functions): the first stage, walking a stack from its leaf, that names a frame.
RULES = [
    ("copy-on-write faults after a fork", ["do_wp_page", "wp_page_copy"]),
    ("snapshot hand-off (copies, log compaction)",
     ["on_snapshot_taken", "snapshot_finish", "start_snapshot", "collect_cb",
      "store_snapshot_encode", "raft_log_compact", "wal_snapshot_put"]),
    ("RESP parse", ["resp_request_parse"]),
    ("apply (store)", ["store_apply"]),
    ("Raft core", ["raft_step"]),
    ("WAL encode", ["wal_record_encode", "wal_batch_append", "wal_node_write",
                    "wal_node_stage_entries", "crc32c_hw", "hy_crc32c"]),
    ("WAL write()", ["__libc_pwrite", "pwrite64", "pwrite", "disk_posix_pwrite_all"]),
    ("fdatasync", ["fdatasync", "disk_posix_sync"]),
    ("hand-off to the WAL thread (copies)",
     ["io_durable_pump", "wal_thread_submit", "wt_copy", "submit_batch"]),
    ("wake-ups between the loop and the WAL thread",
     ["uv_async_send", "wt_report", "wt_prepare_cb", "wt_publish", "uv_cond_signal",
      "uv_cond_wait", "pthread_cond_wait@@GLIBC_2.3.2", "__futex_abstimed_wait_common",
      "uv__async_io", "uv__async_send"]),
    ("reply: write() to clients", ["conn_flush", "uv_try_write", "uv_write"]),
    ("client read()", ["uv__read", "read", "__libc_read", "alloc_cb"]),
    ("propose (command handler, entry encode, waiter)",
     ["node_propose", "cmd_set", "replica_waiter_new", "turn_submit", "node_flush"]),
    ("dispatch (lookup, ACL, routing)", ["node_client_process", "read_cb"]),
    ("wake clients, commit bookkeeping",
     ["handle_update", "wal_node_complete", "node_io_done", "durable_done_cb",
      "server_do_io", "flush_cb"]),
    ("epoll_wait", ["epoll_wait", "epoll_pwait"]),
    ("loop (libuv, timers, other)", ["uv__io_poll", "uv_run"]),
]
STAGE_OF = {}
for stage, funcs in RULES:
    for f in funcs:
        STAGE_OF.setdefault(f, stage)


def samples(path):
    """Yields (tid, [frames from the leaf]) for every sample of the profile."""
    p = subprocess.Popen(["perf", "script", "-i", path, "-F", "tid,ip,sym", "--no-inline"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         errors="replace")
    cur = None
    for line in p.stdout:
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                yield cur
            cur = None
        elif not line.startswith("\t"):  # a sample's header: the tid, right-aligned
            if cur:
                yield cur
            cur = (int(line.split()[0]), [])
        else:
            parts = line.split(None, 1)
            cur[1].append((parts[1] if len(parts) > 1 else "?").split("+")[0])
    if cur:
        yield cur
    p.wait()


def main():
    all_samples = list(samples(sys.argv[1]))
    if not all_samples:
        sys.exit("no samples in %s" % sys.argv[1])
    total = len(all_samples)
    tids = collections.Counter(tid for tid, _ in all_samples)
    loop_tid = tids.most_common(1)[0][0]
    wal_tid = next((tid for tid, fr in all_samples if tid != loop_tid and "wt_main" in fr), None)
    shares = collections.Counter()
    for tid, frames in all_samples:
        if tid not in (loop_tid, wal_tid):
            shares["snapshot encoding (forked children)"] += 1
            continue
        stage = next((STAGE_OF[f] for f in frames if f in STAGE_OF), "other")
        if tid == wal_tid:
            stage = "WAL thread: " + ("other" if stage.startswith("loop") else stage)
        shares[stage] += 1
    others = total - tids[loop_tid] - tids.get(wal_tid, 0)
    print("%d samples: loop thread %.1f%%, WAL thread %.1f%%, forked snapshot encoders %.1f%%"
          % (total, 100 * tids[loop_tid] / total, 100 * tids.get(wal_tid, 0) / total,
             100 * others / total))
    for stage, n in shares.most_common():
        print("%6.1f%%  %s" % (100 * n / total, stage))


if __name__ == "__main__":
    main()
