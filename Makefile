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

# `make SANITIZE=1`: AddressSanitizer + UndefinedBehaviorSanitizer (gcc).
# The module then needs the ASan runtime preloaded into the (uninstrumented)
# postmaster; scripts/sanitize.sh builds a private PostgreSQL installation
# that does this and runs the whole suite against it.  UBSan findings are
# recoverable on purpose: inside a server, aborting a backend on the first
# finding would turn it into a crash-restart that hides the rest of the run
# (and changes what the tests see); every report goes to the server log
# with its stack instead, and sanitize.sh fails the run on any.
# ASan errors are fatal (abort_on_error), as they should be.
# The objects record the mode they were built in (.build-mode), so switching
# SANITIZE (or PG_CONFIG) rebuilds them instead of mixing instrumented and
# plain objects (or objects of two server versions).
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
SANITIZE_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-optimize-sibling-calls
PG_CXXFLAGS += $(SANITIZE_FLAGS) -g
PG_LDFLAGS += $(SANITIZE_FLAGS)
SHLIB_LINK += $(SANITIZE_FLAGS)
endif
PG_CONFIG ?= pg_config
# The server's headers too: objects built against another PostgreSQL
# (scripts/test.sh PG_MAJOR=...) are stale.
BUILD_MODE := SANITIZE=$(SANITIZE) PG=$(shell $(PG_CONFIG) --includedir-server)
ifneq ($(BUILD_MODE),$(shell cat .build-mode 2>/dev/null))
$(shell echo '$(BUILD_MODE)' > .build-mode)
endif

# pg_regress suites (sql/, expected/)
REGRESS = boundary apply rollback privileges policy ddl_log backfill verify prove policy_scans policy_doors policy_databases policy_timing policy_predict policy_scenarios online online_type
REGRESS_OPTS = --load-extension=plpgsql
# isolation specs (test/isolation/specs, test/isolation/expected)
ISOLATION = concurrent_apply lock_queue lock_wait
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=test/isolation/output_iso
# TAP tests (PostgreSQL::Test::Cluster)
TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = test/isolation/output_iso results regression.diffs regression.out .build-mode

# Debian's PGXS builds LLVM bitcode for JIT inlining when the server has
# LLVM.  Our code is C++ with exceptions and nothing worth inlining into
# JIT-compiled expressions; skip the bitcode instead of needing clang.
override with_llvm = no

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS passes CFLAGS-only warnings; C++ needs its own.
override CXXFLAGS := $(filter-out -Wmissing-prototypes -Wdeclaration-after-statement,$(CXXFLAGS))

# Objects built in another SANITIZE mode are stale.
$(OBJS): .build-mode

# TAP tests alone (the PGXS installcheck runs them after the suites above).
.PHONY: tapcheck
tapcheck:
	$(prove_installcheck)

# Debian packages postgresql-MAJOR-safe-migrate (debian/, pg_buildext) into
# build/deb; scripts/deb_test.sh installs and tests the one for 15.
.PHONY: deb
deb:
	bash scripts/deb.sh

# The PGXN archive: safe_migrate-VERSION.zip of the committed tree (git
# archive HEAD), its files under safe_migrate-VERSION/.  The version is the
# control file's default_version, which META.json repeats
# (scripts/dist_test.sh checks both and the archive).
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(srcdir)/safe_migrate.control)
.PHONY: dist
dist:
	git -C $(srcdir) archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION)/ \
	    -o $(abspath $(EXTENSION)-$(EXTVERSION).zip) HEAD
