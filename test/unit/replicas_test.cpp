#include <gtest/gtest.h>

#include <cstdint>

#include "core/replicas.hpp"

namespace sm = safe_migrate::core;
using sm::SenderState;

TEST(ReplicaLag, StreamingReplicaIsMeasuredByItsReplay) {
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Streaming, 900, 400}, 1000), 600);
}

TEST(ReplicaLag, CatchingUpReplicaCounts) {
    // the replica that (re)connected and is still behind is the one that
    // matters most: it is not left out until it streams again
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Catchup, 300, 100}, 5000), 4900);
}

TEST(ReplicaLag, BeforeItsFirstReportWhatWasSentBoundsIt) {
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Catchup, 700, 0}, 1000), 300);
    // nothing known yet: not measured
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Catchup, 0, 0}, 1000), 0);
}

TEST(ReplicaLag, OtherSendersAreNoReplicas) {
    // starting, serving a base backup, stopping, or a free slot
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Other, 10, 10}, 1000), 0);
}

TEST(ReplicaLag, AheadOrEqualIsZero) {
    // the primary's position read before the replica's report
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Streaming, 1200, 1100}, 1000), 0);
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Streaming, 1000, 1000}, 1000), 0);
}

TEST(ReplicaLag, HugeDistanceDoesNotWrap) {
    EXPECT_EQ(sm::replica_lag_bytes({SenderState::Streaming, 1, 1}, UINT64_MAX), INT64_MAX);
}
