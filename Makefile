# halyard - one GNU Makefile (STYLE.md "Build"). Out-of-tree objects under build/.
#
#   make            release build (-O2 -g) into build/
#   make debug      debug build (-O0, HY_DEBUG) into build/debug/
#   make asan       AddressSanitizer + UBSan build into build/asan/
#   make test       deps, builds, lint, unit (release + asan), sim, fuzz replay, integration
#   make run        deps, build, start halyard on 127.0.0.1:7379 in the foreground
#   make bench      halyard vs redis-server side by side (redis-benchmark)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS each
#   make lint       clang-format check + sans-I/O check of the cores

MODE      ?= release
PYTHON    ?= /usr/bin/python3
FUZZ_SECONDS ?= 60
CC        ?= cc
FUZZ_CC   ?= clang

ifeq ($(MODE),release)
OUT       := build
MODE_CFLAGS := -O2 -g
MODE_LDFLAGS :=
else ifeq ($(MODE),debug)
OUT       := build/debug
MODE_CFLAGS := -O0 -g3 -DHY_DEBUG
MODE_LDFLAGS :=
else ifeq ($(MODE),asan)
OUT       := build/asan
MODE_CFLAGS := -O1 -g -DHY_DEBUG -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
MODE_LDFLAGS := -fsanitize=address,undefined
else
$(error unknown MODE $(MODE): release, debug or asan)
endif

PKGS      := libuv yaml-0.1 openssl libmicrohttpd libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)
# Lua 5.1, as Redis embeds, with the cjson and bit modules Redis's scripts have (node/script.c;
# cmsgpack and struct are halyard's own, node/script_libs.c).
LUA_CFLAGS := $(shell pkg-config --cflags lua5.1 2>/dev/null)
LUA_LIBS  := $(shell pkg-config --libs lua5.1-cjson lua5.1-bitop lua5.1 2>/dev/null)

WARN      := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wimplicit-fallthrough -Werror
CFLAGS    := $(WARN) $(MODE_CFLAGS) -D_GNU_SOURCE -Iinclude -Isrc $(LUA_CFLAGS) -MMD -MP \
             $(EXTRA_CFLAGS)
LDLIBS    := $(LUA_LIBS) -lm -lpthread

# The sans-I/O cores: pure functions of (state, event, now_ms).
CORE_DIRS := src/common src/proto src/store src/raft src/membership src/node
CORE_SRC  := $(wildcard $(addsuffix /*.c,$(CORE_DIRS)))
IO_SRC    := $(wildcard src/io/*.c)
SIM_SRC   := $(wildcard sim/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRC  := $(wildcard tests/tools/*.c)

OBJ       := $(OUT)/obj
CORE_OBJ  := $(CORE_SRC:%.c=$(OBJ)/%.o)
# rconn.c is the blocking RESP I/O every client shares: libhalyard, halyctl and the server's
# --join (src/io/identity.c).
RCONN_OBJ := $(OBJ)/src/client/rconn.o
IO_OBJ    := $(IO_SRC:%.c=$(OBJ)/%.o) $(RCONN_OBJ)
SIM_OBJ   := $(SIM_SRC:%.c=$(OBJ)/%.o)
# The whole-node simulator runs the real WAL on the simulated disk: the parts of src/io that
# make no system call (the rest of the shell needs libuv and real files).
SIM_IO_OBJ := $(addprefix $(OBJ)/src/io/,wal.o wal_codec.o wal_recover.o wal_node.o \
                                             disk_mem.o snap_stream.o snap_recv.o)
CORE_LIB  := $(OUT)/libhycore.a
IO_LIB    := $(OUT)/libhyio.a
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(OUT)/tests/%)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(OUT)/tools/%)
SERVER    := $(OUT)/halyard
CLI_SRC   := $(wildcard src/cli/*.c)
CLI       := $(if $(CLI_SRC),$(OUT)/halyctl)
SIM       := $(if $(SIM_SRC),$(OUT)/halyard-sim)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)

# libhalyard (include/halyard.h): the client's core and shell plus the parts of the cores it
# uses. The shared library is built from position-independent objects that export only the
# public API (-fvisibility=hidden; HALYARD_API marks what is exported).
CLIENT_SRC := $(wildcard src/client/*.c)
LIBHY_SRC := $(CLIENT_SRC) $(wildcard src/common/*.c) $(wildcard src/proto/*.c)
LIBHY_A   := $(if $(CLIENT_SRC),$(OUT)/libhalyard.a)
LIBHY_SO  := $(if $(CLIENT_SRC),$(OUT)/libhalyard.so)
PREFIX    ?= /usr/local

.PHONY: all release debug asan test unit sim-test fuzz-build fuzz fuzz-replay integration \
        lint format run bench bench-metrics bench-failover bench-cluster bench-partitions bench-churn bench-many-partitions bench-move bench-tls bench-detect bench-memory bench-wan bench-wan-converge bench-wan-resync bench-wan-throughput deps clean sim bench-raft
.DEFAULT_GOAL := all
.SECONDARY:

all: $(SERVER) $(CLI) $(SIM) $(UNIT_BIN) $(TOOL_BIN) $(LIBHY_A) $(LIBHY_SO)

release:
	$(MAKE) MODE=release all
debug:
	$(MAKE) MODE=debug all
asan:
	$(MAKE) MODE=asan all

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $(MODE) $<"
	@$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(OBJ)/pic/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC $(MODE) pic $<"
	@$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(LIBHY_A): $(LIBHY_SRC:%.c=$(OBJ)/%.o)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(LIBHY_SO): $(LIBHY_SRC:%.c=$(OBJ)/pic/%.o)
	$(CC) $(MODE_LDFLAGS) -shared -Wl,-soname,libhalyard.so.0 -o $@ $^ -lssl -lcrypto -lyaml -luv -lpthread

# make install PREFIX=...: the header, both libraries and halyard.pc for pkg-config.
.PHONY: install
install: $(LIBHY_A) $(LIBHY_SO)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 include/halyard.h $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIBHY_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIBHY_SO) $(DESTDIR)$(PREFIX)/lib/libhalyard.so.0
	ln -sf libhalyard.so.0 $(DESTDIR)$(PREFIX)/lib/libhalyard.so
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(shell sed -n 's/.*HY_VERSION "\(.*\)".*/\1/p' src/common/version.h)|' \
	    scripts/halyard.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/halyard.pc

$(CORE_LIB): $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(IO_LIB): $(IO_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SERVER): $(OBJ)/src/server/main.o $(IO_LIB) $(CORE_LIB)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(OUT)/halyctl: $(CLI_SRC:%.c=$(OBJ)/%.o) $(RCONN_OBJ) $(CORE_LIB)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(shell pkg-config --libs openssl 2>/dev/null) $(LDLIBS)

$(OUT)/halyard-sim: $(SIM_OBJ) $(SIM_IO_OBJ) $(CORE_LIB)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/%: $(OBJ)/tests/unit/%.o $(IO_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) $(PKG_LIBS) $(LDLIBS)

# The client's tests and tools link libhalyard.
$(OUT)/tests/test_client: $(OBJ)/tests/unit/test_client.o $(LIBHY_A)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(CMOCKA_LIBS) -lssl -lcrypto -lyaml -luv $(LDLIBS)

$(OUT)/tools/hy_client_load: $(OBJ)/tests/tools/hy_client_load.o $(LIBHY_A)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ -lssl -lcrypto -lyaml -luv $(LDLIBS)

$(OUT)/tools/hy_client_async: $(OBJ)/tests/tools/hy_client_async.o $(LIBHY_A)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ -lssl -lcrypto -lyaml -luv $(LDLIBS)

# Test helpers (e.g. a WAL writer for crash loops): one binary per tests/tools/*.c.
$(OUT)/tools/%: $(OBJ)/tests/tools/%.o $(IO_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

-include $(shell find $(OBJ) -name '*.d' 2>/dev/null)

# ---- tests -------------------------------------------------------------------------------

deps:
	@scripts/deps.sh

test: deps
	$(MAKE) -j2 MODE=release all
	$(MAKE) -j2 MODE=asan all
	$(MAKE) -j2 fuzz-build
	$(MAKE) lint
	$(MAKE) MODE=release unit
	$(MAKE) MODE=asan unit
	$(MAKE) MODE=release sim-test
	$(MAKE) fuzz-replay
	$(MAKE) MODE=release integration
	@echo "make test: all green"

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

sim-test: $(SIM)
	@if [ -x tests/sim/run.sh ]; then tests/sim/run.sh $(OUT); else echo "no simulator yet"; fi

# Long simulator campaigns: make sim SEEDS=100000 FROM=1
SEEDS ?= 1000
FROM  ?= 1
sim: $(SIM)
	$(SIM) --seeds $(SEEDS) --from $(FROM)

# The integration tests spend most of their time waiting (elections, failure detection, servers
# starting), so they run on INTEGRATION_JOBS pytest-xdist workers, a file at a time per worker;
# the files that need the whole machine run one after another (tests/integration/conftest.py).
# The slowest tests are listed at the end. INTEGRATION_JOBS=0 runs everything in this process.
INTEGRATION_JOBS ?= 2
integration: $(SERVER) $(CLI)
	HALYARD_BIN=$(abspath $(SERVER)) $(PYTHON) -m pytest -q -p no:cacheprovider \
	  $(if $(filter 0,$(INTEGRATION_JOBS)),,-n $(INTEGRATION_JOBS) --dist loadgroup) \
	  --durations=15 tests/integration

# ---- fuzzing (clang libFuzzer + ASan + UBSan) ---------------------------------------------

FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -DHY_DEBUG -Iinclude -Isrc $(LUA_CFLAGS) \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_CORE   := $(CORE_SRC) src/client/core.c src/client/reply.c src/client/stale.c

FUZZ_OBJ    := $(FUZZ_CORE:%.c=build/fuzz/obj/%.o)

# The core is compiled once for every target (it was compiled again per target: about a minute
# of the 2-core CI each).
build/fuzz/obj/%.o: %.c $(wildcard src/*/*.h src/*/*.def)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJ) $(LUA_LIBS) -lm

# The DNS reply reader stands alone: its target compiles it and nothing else.
build/fuzz/fuzz_dns: tests/fuzz/fuzz_dns.c src/proto/dns.c src/proto/dns.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< src/proto/dns.c

fuzz-build: $(FUZZ_BIN)

# Replays every committed corpus once (no mutation): each past crash stays fixed.
fuzz-replay: fuzz-build
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); \
	  echo "== replay $$n"; $$f -runs=0 -artifact_prefix=build/fuzz/ tests/fuzz/corpus/$$n; done

fuzz: fuzz-build
	@set -e; for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p build/fuzz/new-$$n; \
	  echo "== fuzz $$n for $(FUZZ_SECONDS)s"; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	      build/fuzz/new-$$n \
	      tests/fuzz/corpus/$$n; done

# ---- lint ---------------------------------------------------------------------------------

FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null; \
                 git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)

lint:
	@clang-format --dry-run --Werror $(FORMAT_FILES)
	@scripts/lint-sans-io.sh
	@scripts/lint-docs.sh
	@echo "lint: ok"

format:
	clang-format -i $(FORMAT_FILES)

# ---- running and benchmarks ---------------------------------------------------------------

run: deps
	$(MAKE) -j2 MODE=release $(SERVER) $(CLI)
	scripts/run.sh $(abspath $(SERVER))

bench: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	bench/bench.sh $(abspath $(SERVER))
	bench/types.sh $(abspath $(SERVER))
	bench/metrics_cost.sh $(abspath $(SERVER))

# The data types against redis-server (issue 13: LPUSH ... EVALSHA against halyard's own SET
# ratio), alone. See bench/types.sh.
.PHONY: bench-types
bench-types: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	bench/types.sh $(abspath $(SERVER))

# The cost of scraping /metrics every second on SET throughput (issue 14), alone.
bench-metrics: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	bench/metrics_cost.sh $(abspath $(SERVER))

# libhalyard against hiredis on the same node: GET and SET, 1 and 50 threads, async (issue 15).
.PHONY: bench-client
bench-client: deps
	$(MAKE) -j2 MODE=release $(SERVER) $(OUT)/bench/client_bench
	bench/client.sh $(OUT)

$(OUT)/bench/client_bench: $(OBJ)/bench/client_bench.o $(LIBHY_A)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ -lhiredis -lssl -lcrypto -lyaml -luv $(LDLIBS)

# Failover time of a 3-node cluster after kill -9 of the leader (median and worst of 10), then
# the longest gap per client for clients of the followers and of the leader (10 rounds), then
# the client-seen interruption of libhalyard and hiredis writers (20 kills of the leader, 20 of
# a follower; bench/failover_client.py).
bench-failover: deps
	$(MAKE) -j2 MODE=release $(SERVER) $(OUT)/bench/failover_client
	$(PYTHON) bench/failover.py $(abspath $(SERVER)) 10
	$(PYTHON) bench/failover_clients.py $(abspath $(SERVER)) 10
	$(PYTHON) bench/failover_client.py $(abspath $(SERVER)) $(abspath $(OUT)/bench/failover_client) 20

# Only the client-seen part (libhalyard against hiredis with a hand-written reconnect).
.PHONY: bench-failover-client
bench-failover-client: deps
	$(MAKE) -j2 MODE=release $(SERVER) $(OUT)/bench/failover_client
	$(PYTHON) bench/failover_client.py $(abspath $(SERVER)) $(abspath $(OUT)/bench/failover_client) \
	    $${BENCH_TRIALS:-20}

$(OUT)/bench/failover_client: $(OBJ)/bench/failover_client.o $(LIBHY_A)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ -lhiredis -lssl -lcrypto -lyaml -luv $(LDLIBS)

# A 3-node cluster against Redis with appendfsync always (SET throughput, one-client latency),
# failover p50/p99 over 20 rounds, partitions (idle cost of 1,024, SET with 16 against 1, a node
# killed or stopped: bench/partitions.py) and a 3-member etcd when its binary is installed
# (BENCH_ETCD=1 installs Debian's etcd-server first). See bench/cluster.sh.
bench-cluster: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	bench/cluster.sh $(abspath $(SERVER))

# Leader changes of a 3-node cluster under redis-benchmark -P 16, CHURN_RUNS runs (issue 17,
# docs/performance.md "Leader changes under load"). See bench/churn.sh.
CHURN_RUNS ?= 4
bench-churn: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	bench/churn.sh $(abspath $(SERVER)) $(CHURN_RUNS)

# Partitions alone (rows (d)-(f) of bench-cluster): one client's latency with 16 partitions
# against 1 (row (b) so), idle cost, throughput and CPU per SET with 16 against 1,
# per-partition failover after kill -9 and SIGSTOP. See bench/partitions.py.
bench-partitions: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/partitions.py $(abspath $(SERVER))

# A WAN link's replication lag at a steady write load (docs/wan.md). See bench/wan_lag.py.
bench-wan: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/wan_lag.py $(abspath $(SERVER))

# Two active-active clusters: the time to converge after a 60 s cut with writes on both sides.
bench-wan-converge: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/wan_converge.py $(abspath $(SERVER))

# A source's write throughput and CPU per SET with one WAN link against without.
bench-wan-throughput: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/wan_throughput.py $(abspath $(SERVER))

# A WAN link added to a source holding 100,000 keys: the time to copy them (its resync).
bench-wan-resync: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/wan_resync.py $(abspath $(SERVER))

# Many partitions: a 3-node cluster with 4,096 (BENCH_PARTS) starting, electing every leader,
# balancing, one SET per partition, then idle CPU and RSS per node. See bench/many_partitions.py.
bench-many-partitions: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	/usr/bin/python3 bench/many_partitions.py $(abspath $(SERVER))

# Moving a node's share (issue 12): 3 nodes with 16 partitions loaded with MOVE_SIZE of values
# (default 1G), a steady SET load, then a 4th node joins; time until every partition is settled
# and the load's p99 during the move against before it, MOVE_RUNS runs (default 3), medians.
# See bench/move.py and docs/partitioning.md "Moving a node's share".
MOVE_SIZE ?= 1G
MOVE_RUNS ?= 3
bench-move: deps
	$(MAKE) -j2 MODE=release $(SERVER) $(CLI)
	$(PYTHON) bench/move.py $(abspath $(SERVER)) --size $(MOVE_SIZE) --runs $(MOVE_RUNS)

# Failure detection (issue 14): SUSPECT/DEAD time after kill -9 and SIGSTOP of a member of a
# 3-node cluster, p50/p99 over 20 rounds each; false suspicions per node-hour under a CPU hog
# and load (DETECT_HOG_SECONDS, default 300). See bench/detect.py.
DETECT_HOG_SECONDS ?= 300
bench-detect: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	$(PYTHON) bench/detect.py $(abspath $(SERVER)) --rounds 20 --hog-seconds $(DETECT_HOG_SECONDS)

# Memory per small collection (1,000,000 keys of 10 members per type; MEMORY_KEYS sets the
# count): halyard against redis-server, side by side (bench/memory.py).
MEMORY_KEYS ?= 1000000
bench-memory: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	$(PYTHON) bench/memory.py $(abspath $(SERVER)) --keys $(MEMORY_KEYS)

# TLS cost: halyard and redis-server with and without TLS; a 3-node cluster with tls-cluster.
bench-tls: deps
	$(MAKE) -j2 MODE=release $(SERVER)
	$(PYTHON) bench/tls.py $(abspath $(SERVER))

# Raft core throughput without I/O: 3 in-process nodes (bench/raft_bench.c).
bench-raft: $(CORE_LIB)
	$(CC) $(CFLAGS) -o $(OUT)/raft-bench bench/raft_bench.c $(CORE_LIB) $(LDLIBS)
	$(OUT)/raft-bench 2000000 64 16
	$(OUT)/raft-bench 2000000 64 256

# The durable log against the raw disk floor, same disk, same run (issue 4; not a timed test).
.PHONY: bench-wal
BENCH_WAL_DIR ?= build/bench-wal
bench-wal: $(OUT)/bench/wal_bench
	$(OUT)/bench/wal_bench $(BENCH_WAL_DIR)

$(OUT)/bench/wal_bench: $(OBJ)/bench/wal_bench.o $(IO_LIB) $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(MODE_LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

clean:
	rm -rf build
