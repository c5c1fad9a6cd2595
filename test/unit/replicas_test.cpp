#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/replicas.hpp"

namespace sm = safe_migrate::core;
using sm::SenderState;

namespace {
int64_t lag(const std::vector<sm::SenderPosition> &s, uint64_t current) {
    return sm::worst_replica_lag(s.data(), s.size(), current);
}
}  // namespace

TEST(ReplicaLag, NoSenders) {
    EXPECT_EQ(lag({}, 1000), 0);
}

TEST(ReplicaLag, StreamingReplicaIsMeasuredByItsReplay) {
    EXPECT_EQ(lag({{true, SenderState::Streaming, 900, 400}}, 1000), 600);
}

TEST(ReplicaLag, CatchingUpReplicaCounts) {
    // the replica that (re)connected and is still behind is the one that
    // matters most: it is not left out until it streams again
    EXPECT_EQ(lag({{true, SenderState::Catchup, 300, 100}}, 5000), 4900);
    EXPECT_EQ(lag({{true, SenderState::Streaming, 4900, 4800},
                   {true, SenderState::Catchup, 2000, 1000}},
                  5000),
              4000);
}

TEST(ReplicaLag, BeforeItsFirstReportWhatWasSentBoundsIt) {
    EXPECT_EQ(lag({{true, SenderState::Catchup, 700, 0}}, 1000), 300);
    // nothing known yet: not measured
    EXPECT_EQ(lag({{true, SenderState::Catchup, 0, 0}}, 1000), 0);
}

TEST(ReplicaLag, NotReplicas) {
    EXPECT_EQ(lag({{true, SenderState::Backup, 10, 10},
                   {true, SenderState::Startup, 10, 10},
                   {true, SenderState::Stopping, 10, 10},
                   {false, SenderState::Streaming, 10, 10}},
                  1000),
              0);
}

TEST(ReplicaLag, AheadOrEqualIsZero) {
    // the primary's position read before the replica's report
    EXPECT_EQ(lag({{true, SenderState::Streaming, 1200, 1100}}, 1000), 0);
    EXPECT_EQ(lag({{true, SenderState::Streaming, 1000, 1000}}, 1000), 0);
}

TEST(ReplicaLag, WorstOfMany) {
    EXPECT_EQ(lag({{true, SenderState::Streaming, 990, 980},
                   {true, SenderState::Streaming, 900, 500},
                   {true, SenderState::Streaming, 999, 999}},
                  1000),
              500);
}

TEST(ReplicaLag, HugeDistanceDoesNotWrap) {
    EXPECT_EQ(lag({{true, SenderState::Streaming, 1, 1}}, UINT64_MAX), INT64_MAX);
}
