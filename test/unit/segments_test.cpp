#include <gtest/gtest.h>

#include <vector>

#include "core/segments.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;
using sm::TxClass;

namespace {

constexpr TxClass T = TxClass::Transactional;
constexpr TxClass O = TxClass::OwnTransaction;
constexpr TxClass N = TxClass::NonTransactional;
constexpr TxClass F = TxClass::Forbidden;

void expect_segment(const sm::Segment& s, std::size_t first, std::size_t count, TxClass kind) {
    EXPECT_EQ(s.first, first);
    EXPECT_EQ(s.count, count);
    EXPECT_EQ(s.kind, kind);
}

}  // namespace

TEST(PlanSegments, Empty) {
    const auto segs = sm::plan_segments({});
    EXPECT_TRUE(segs.empty());
    EXPECT_TRUE(sm::is_atomic(segs));
}

TEST(PlanSegments, AllTransactionalIsOneSegment) {
    const auto segs = sm::plan_segments({T, T, T, T});
    ASSERT_EQ(segs.size(), 1u);
    expect_segment(segs[0], 0, 4, T);
    EXPECT_TRUE(sm::is_atomic(segs));
}

TEST(PlanSegments, SingleStatements) {
    for (TxClass k : {T, O, N}) {
        const auto segs = sm::plan_segments({k});
        ASSERT_EQ(segs.size(), 1u);
        expect_segment(segs[0], 0, 1, k);
        EXPECT_TRUE(sm::is_atomic(segs));
    }
}

TEST(PlanSegments, MixedSequence) {
    const auto segs = sm::plan_segments({T, T, O, T, N, N, T, T, T, O, O});
    ASSERT_EQ(segs.size(), 8u);
    expect_segment(segs[0], 0, 2, T);
    expect_segment(segs[1], 2, 1, O);
    expect_segment(segs[2], 3, 1, T);
    expect_segment(segs[3], 4, 1, N);
    expect_segment(segs[4], 5, 1, N);
    expect_segment(segs[5], 6, 3, T);
    expect_segment(segs[6], 9, 1, O);
    expect_segment(segs[7], 10, 1, O);
    EXPECT_FALSE(sm::is_atomic(segs));
}

TEST(PlanSegments, LeadingAndTrailingSpecialStatements) {
    const auto segs = sm::plan_segments({N, T, T, O});
    ASSERT_EQ(segs.size(), 3u);
    expect_segment(segs[0], 0, 1, N);
    expect_segment(segs[1], 1, 2, T);
    expect_segment(segs[2], 3, 1, O);
}

TEST(PlanSegments, SegmentsCoverEveryStatementExactlyOnce) {
    std::vector<TxClass> stmts;
    for (int i = 0; i < 500; ++i) stmts.push_back((i % 7 == 0) ? N : (i % 11 == 0) ? O : T);
    const auto segs = sm::plan_segments(stmts);
    std::size_t next = 0;
    for (const auto& s : segs) {
        EXPECT_EQ(s.first, next);
        ASSERT_GE(s.count, 1u);
        if (s.kind != T) {
            EXPECT_EQ(s.count, 1u);
        }
        for (std::size_t i = s.first; i < s.first + s.count; ++i) EXPECT_EQ(stmts[i], s.kind);
        next = s.first + s.count;
    }
    EXPECT_EQ(next, stmts.size());
}

TEST(PlanSegments, ForbiddenIsRejectedWithOneBasedPosition) {
    EXPECT_TRUE(ThrowsScriptError([] { sm::plan_segments({F}); }, "statement 1:"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::plan_segments({T, T, F, T}); }, "statement 3:"));
    EXPECT_TRUE(ThrowsScriptError([] { sm::plan_segments({T, O, N, F}); }, "not allowed"));
    // The first forbidden statement is reported.
    EXPECT_TRUE(ThrowsScriptError([] { sm::plan_segments({T, F, F}); }, "statement 2:"));
}

TEST(IsAtomic, CountsSegments) {
    EXPECT_TRUE(sm::is_atomic({}));
    EXPECT_TRUE(sm::is_atomic({sm::Segment{0, 10, T}}));
    EXPECT_TRUE(sm::is_atomic({sm::Segment{0, 1, N}}));
    EXPECT_FALSE(sm::is_atomic({sm::Segment{0, 1, T}, sm::Segment{1, 1, O}}));
}
