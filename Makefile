# safe_migrate — PGXS build.  C++17; PostgreSQL 15 (portable to 13–17).

EXTENSION = safe_migrate
MODULE_big = safe_migrate
DATA = $(wildcard sql/safe_migrate--*.sql)

CORE_SRCS = $(wildcard src/core/*.cpp)
PG_SRCS = src/safe_migrate.cpp $(wildcard src/pg/*.cpp) $(wildcard src/runner/*.cpp) $(wildcard src/policy/*.cpp) $(wildcard src/backfill/*.cpp)
OBJS = $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

PG_CPPFLAGS = -I$(srcdir)/src
PG_CXXFLAGS = -std=c++17 -Wno-register -fno-omit-frame-pointer
SHLIB_LINK = -lstdc++

# pg_regress suites (sql/, expected/)
REGRESS = boundary apply rollback privileges policy backfill verify prove
REGRESS_OPTS = --load-extension=plpgsql
# isolation specs (test/isolation/specs, test/isolation/expected)
ISOLATION = concurrent_apply lock_queue
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso
# TAP tests (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = test/isolation/output_iso results regression.diffs regression.out

# Debian's PGXS builds LLVM bitcode for JIT inlining when the server has
# LLVM.  Our code is C++ with exceptions and nothing worth inlining into
# JIT-compiled expressions; skip the bitcode instead of needing clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS passes CFLAGS-only warnings; C++ needs its own.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement,$(CXXFLAGS))

# TAP tests alone (the PGXS installcheck runs them after the suites above).
.PHONY: tapcheck
tapcheck:
	$(prove_installcheck)
