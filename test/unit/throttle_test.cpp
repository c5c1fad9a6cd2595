#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>
#include <vector>

#include "core/throttle.hpp"
#include "test_util.hpp"

namespace sm = safe_migrate::core;

namespace {

// A simulated table: a batch of n rows takes n * per_row_ms + overhead_ms.
struct SimTable {
    double per_row_ms = 0.05;
    double overhead_ms = 2.0;
    double duration(long rows) const { return static_cast<double>(rows) * per_row_ms + overhead_ms; }
    // Batch size for which duration == target.
    double ideal(double target_ms) const { return (target_ms - overhead_ms) / per_row_ms; }
};

sm::BatchObservation full_batch(int size, double duration_ms, int waiters = 0) {
    return sm::BatchObservation{size, size, duration_ms, waiters};
}

struct Step {
    int size;
    sm::ThrottleDecision decision;
};

// Runs `n` full batches against `table`, starting from `size`.
std::vector<Step> run(sm::Throttle& t, const SimTable& table, int size, int n) {
    std::vector<Step> steps;
    for (int i = 0; i < n; ++i) {
        const auto d = t.after_batch(full_batch(size, table.duration(size)));
        steps.push_back({size, d});
        size = d.next_batch;
    }
    return steps;
}

void expect_growth_bounded(const std::vector<Step>& steps, double max_growth) {
    for (const auto& s : steps) {
        EXPECT_LE(s.decision.next_batch, s.size * max_growth) << "from " << s.size;
        EXPECT_GE(s.decision.next_batch, s.size / max_growth) << "from " << s.size;
    }
}

}  // namespace

// ---------------------------------------------------------------- config

TEST(ThrottleConfig, Defaults) {
    const sm::ThrottleConfig c;
    EXPECT_EQ(c.initial_batch, 1000);
    EXPECT_EQ(c.min_batch, 1);
    EXPECT_EQ(c.max_batch, 100000);
    EXPECT_DOUBLE_EQ(c.target_batch_ms, 200);
    EXPECT_DOUBLE_EQ(c.max_rows_per_second, 0);
    EXPECT_DOUBLE_EQ(c.pause_ms, 0);
    EXPECT_DOUBLE_EQ(c.max_growth, 2.0);
    EXPECT_DOUBLE_EQ(c.lock_wait_shrink, 0.5);
    EXPECT_NO_THROW(sm::validate(c));
}

TEST(ThrottleConfig, ValidateRejectsNonsense) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    struct Case {
        void (*mutate)(sm::ThrottleConfig&, double, double);
        const char* needle;
    };
    const Case cases[] = {
        {[](sm::ThrottleConfig& c, double, double) { c.min_batch = 0; }, "min_batch must be at least 1"},
        {[](sm::ThrottleConfig& c, double, double) { c.min_batch = -5; }, "min_batch must be at least 1"},
        {[](sm::ThrottleConfig& c, double, double) {
             c.min_batch = 10;
             c.max_batch = 9;
         },
         "must not exceed max_batch"},
        {[](sm::ThrottleConfig& c, double, double) { c.max_batch = 0; }, "must not exceed max_batch"},
        {[](sm::ThrottleConfig& c, double, double) { c.initial_batch = 0; }, "initial_batch"},
        {[](sm::ThrottleConfig& c, double, double) { c.initial_batch = -1; }, "initial_batch"},
        {[](sm::ThrottleConfig& c, double, double) { c.target_batch_ms = 0; }, "target_batch_ms"},
        {[](sm::ThrottleConfig& c, double, double) { c.target_batch_ms = -1; }, "target_batch_ms"},
        {[](sm::ThrottleConfig& c, double n, double) { c.target_batch_ms = n; }, "target_batch_ms"},
        {[](sm::ThrottleConfig& c, double, double i) { c.target_batch_ms = i; }, "target_batch_ms"},
        {[](sm::ThrottleConfig& c, double, double) { c.max_rows_per_second = -1; }, "max_rows_per_second"},
        {[](sm::ThrottleConfig& c, double n, double) { c.max_rows_per_second = n; }, "max_rows_per_second"},
        {[](sm::ThrottleConfig& c, double, double i) { c.max_rows_per_second = i; }, "max_rows_per_second"},
        {[](sm::ThrottleConfig& c, double, double) { c.pause_ms = -0.5; }, "pause_ms"},
        {[](sm::ThrottleConfig& c, double n, double) { c.pause_ms = n; }, "pause_ms"},
        {[](sm::ThrottleConfig& c, double, double i) { c.pause_ms = i; }, "pause_ms"},
        {[](sm::ThrottleConfig& c, double, double) { c.max_growth = 1.0; }, "max_growth"},
        {[](sm::ThrottleConfig& c, double, double) { c.max_growth = 0.5; }, "max_growth"},
        {[](sm::ThrottleConfig& c, double n, double) { c.max_growth = n; }, "max_growth"},
        {[](sm::ThrottleConfig& c, double, double i) { c.max_growth = i; }, "max_growth"},
        {[](sm::ThrottleConfig& c, double, double) { c.lock_wait_shrink = 0; }, "lock_wait_shrink"},
        {[](sm::ThrottleConfig& c, double, double) { c.lock_wait_shrink = 1; }, "lock_wait_shrink"},
        {[](sm::ThrottleConfig& c, double, double) { c.lock_wait_shrink = -0.2; }, "lock_wait_shrink"},
        {[](sm::ThrottleConfig& c, double, double) { c.lock_wait_shrink = 1.5; }, "lock_wait_shrink"},
        {[](sm::ThrottleConfig& c, double n, double) { c.lock_wait_shrink = n; }, "lock_wait_shrink"},
    };
    for (const auto& tc : cases) {
        sm::ThrottleConfig c;
        tc.mutate(c, nan, inf);
        EXPECT_TRUE(ThrowsScriptError([&] { sm::validate(c); }, tc.needle));
        EXPECT_TRUE(ThrowsScriptError([&] { sm::validate(c); }, "throttle: "));
        EXPECT_TRUE(ThrowsScriptError([&] { sm::Throttle t(c); }, tc.needle));
    }
}

TEST(ThrottleConfig, MessagesNameTheValues) {
    sm::ThrottleConfig c;
    c.min_batch = 50;
    c.max_batch = 20;
    EXPECT_TRUE(ThrowsScriptError([&] { sm::validate(c); }, "min_batch (50) must not exceed max_batch (20)"));
    sm::ThrottleConfig d;
    d.max_growth = 0.75;
    EXPECT_TRUE(ThrowsScriptError([&] { sm::validate(d); }, "(got 0.75)"));
}

TEST(ThrottleConfig, ValidateAcceptsEdges) {
    sm::ThrottleConfig c;
    c.min_batch = 7;
    c.max_batch = 7;
    c.initial_batch = 7;
    c.max_rows_per_second = 0;
    c.pause_ms = 0;
    c.max_growth = 1.0001;
    c.lock_wait_shrink = 0.999;
    c.target_batch_ms = 0.001;
    EXPECT_NO_THROW(sm::validate(c));
    c.initial_batch = 1;  // outside [min, max]: clamped, not rejected
    EXPECT_NO_THROW(sm::validate(c));
    c.initial_batch = INT_MAX;
    EXPECT_NO_THROW(sm::validate(c));
}

TEST(Throttle, ConfigAndFirstBatch) {
    sm::ThrottleConfig c;
    c.initial_batch = 321;
    c.pause_ms = 12;
    const sm::Throttle t(c);
    EXPECT_EQ(t.first_batch(), 321);
    EXPECT_EQ(t.config().initial_batch, 321);
    EXPECT_DOUBLE_EQ(t.config().pause_ms, 12);
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 0);
}

TEST(Throttle, FirstBatchClampedToRange) {
    sm::ThrottleConfig c;
    c.max_batch = 500;  // default initial_batch 1000 is above it
    EXPECT_EQ(sm::Throttle(c).first_batch(), 500);
    sm::ThrottleConfig d;
    d.min_batch = 2000;
    d.max_batch = 5000;
    EXPECT_EQ(sm::Throttle(d).first_batch(), 2000);
}

// ---------------------------------------------------------------- batch size

TEST(Throttle, ConvergesNearTarget) {
    const SimTable table;  // 0.05 ms/row + 2 ms: ideal 3960 rows for 200 ms
    sm::Throttle t{sm::ThrottleConfig{}};
    const auto steps = run(t, table, t.first_batch(), 15);
    expect_growth_bounded(steps, 2.0);
    const double ideal = table.ideal(200);
    const int last = steps.back().decision.next_batch;
    EXPECT_GE(last, ideal * 0.75);
    EXPECT_LE(last, ideal * 1.25);
    // And it stays there.
    const auto more = run(t, table, last, 30);
    for (const auto& s : more) {
        EXPECT_GE(s.decision.next_batch, ideal * 0.75);
        EXPECT_LE(s.decision.next_batch, ideal * 1.25);
        EXPECT_NEAR(table.duration(s.size), 200, 50);
    }
}

TEST(Throttle, ConvergesFromAboveToo) {
    const SimTable table;
    sm::ThrottleConfig c;
    c.initial_batch = 100000;  // 5 s per batch at first
    sm::Throttle t(c);
    const auto steps = run(t, table, t.first_batch(), 15);
    expect_growth_bounded(steps, 2.0);
    const double ideal = table.ideal(200);
    EXPECT_NEAR(steps.back().decision.next_batch, ideal, ideal * 0.25);
}

TEST(Throttle, GrowsGraduallyNeverMoreThanMaxGrowth) {
    const SimTable table{0.0001, 0.5};  // very fast table: ideal ~2M rows
    sm::ThrottleConfig c;
    c.initial_batch = 10;
    c.max_batch = 1000000;
    c.max_growth = 1.5;
    sm::Throttle t(c);
    const auto steps = run(t, table, t.first_batch(), 40);
    expect_growth_bounded(steps, 1.5);
    for (const auto& s : steps) EXPECT_GE(s.decision.next_batch, s.size);  // fast: never shrinks
    EXPECT_EQ(steps[0].decision.next_batch, 15);
    EXPECT_EQ(steps.back().decision.next_batch, 1000000);
}

TEST(Throttle, ConvergesForVariousTargetsAndGrowths) {
    for (double target : {20.0, 100.0, 200.0, 1000.0}) {
        for (double growth : {1.25, 2.0, 4.0}) {
            const SimTable table{0.02, 1.0};
            sm::ThrottleConfig c;
            c.target_batch_ms = target;
            c.max_growth = growth;
            c.max_batch = 1000000;
            sm::Throttle t(c);
            const auto steps = run(t, table, t.first_batch(), 40);
            expect_growth_bounded(steps, growth);
            const double ideal = table.ideal(target);
            EXPECT_NEAR(steps.back().decision.next_batch, ideal, ideal * 0.25)
                << "target " << target << " growth " << growth;
        }
    }
}

TEST(Throttle, SlowerPerRowCostGivesSmallerBatches) {
    sm::Throttle fast{sm::ThrottleConfig{}};
    sm::Throttle slow{sm::ThrottleConfig{}};
    const SimTable fast_table{0.05, 2.0};
    const SimTable slow_table{0.5, 2.0};  // ideal 396
    const auto f = run(fast, fast_table, fast.first_batch(), 20);
    const auto s = run(slow, slow_table, slow.first_batch(), 20);
    EXPECT_LT(s.back().decision.next_batch, f.back().decision.next_batch);
    EXPECT_NEAR(s.back().decision.next_batch, slow_table.ideal(200), slow_table.ideal(200) * 0.25);
    // The first slow batch (1000 rows, 502 ms) already shrinks.
    EXPECT_LT(s.front().decision.next_batch, 1000);
    expect_growth_bounded(s, 2.0);
}

TEST(Throttle, SuddenSlowdownShrinksWithinAFewBatches) {
    SimTable table{0.05, 2.0};
    sm::Throttle t{sm::ThrottleConfig{}};
    const auto warm = run(t, table, t.first_batch(), 20);
    int size = warm.back().decision.next_batch;
    ASSERT_NEAR(size, table.ideal(200), table.ideal(200) * 0.25);

    table.per_row_ms = 0.5;  // 10x slower: ideal 396
    const auto after = run(t, table, size, 6);
    expect_growth_bounded(after, 2.0);
    // Shrinks at once, as fast as allowed (factor 1/2 per step).
    EXPECT_EQ(after[0].decision.next_batch, static_cast<int>(std::lround(size / 2.0)));
    for (std::size_t i = 1; i < after.size(); ++i)
        EXPECT_LE(after[i].decision.next_batch, after[i - 1].decision.next_batch);
    // Within 5 batches the size is near the new ideal.
    EXPECT_LE(after[4].decision.next_batch, table.ideal(200) * 1.25);
    EXPECT_GE(after[4].decision.next_batch, table.ideal(200) * 0.75);
}

TEST(Throttle, RecoversAfterSlowdownEnds) {
    SimTable table{0.5, 2.0};
    sm::Throttle t{sm::ThrottleConfig{}};
    int size = run(t, table, t.first_batch(), 15).back().decision.next_batch;
    table.per_row_ms = 0.05;
    const auto after = run(t, table, size, 15);
    expect_growth_bounded(after, 2.0);
    EXPECT_NEAR(after.back().decision.next_batch, table.ideal(200), table.ideal(200) * 0.25);
}

TEST(Throttle, ExactScalingFromPerRowTime) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // 1000 rows in 160 ms: 0.16 ms/row -> 1250 rows for 200 ms.
    EXPECT_EQ(t.after_batch(full_batch(1000, 160)).next_batch, 1250);
    // 1250 rows in 250 ms -> 1000.
    EXPECT_EQ(t.after_batch(full_batch(1250, 250)).next_batch, 1000);
    // On target -> unchanged.
    EXPECT_EQ(t.after_batch(full_batch(1000, 200)).next_batch, 1000);
    // Way too fast / way too slow: clamped to x2 and /2.
    EXPECT_EQ(t.after_batch(full_batch(1000, 1)).next_batch, 2000);
    EXPECT_EQ(t.after_batch(full_batch(1000, 10000)).next_batch, 500);
}

// ---------------------------------------------------------------- lock waiters

TEST(Throttle, LockWaitersShrinkTheBatch) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // On target, but someone waited: halve.
    EXPECT_EQ(t.after_batch(full_batch(1000, 200, 1)).next_batch, 500);
    // Any number of waiters counts.
    EXPECT_EQ(t.after_batch(full_batch(1000, 200, 7)).next_batch, 500);
    // No waiters: no shrink.
    EXPECT_EQ(t.after_batch(full_batch(1000, 200, 0)).next_batch, 1000);
}

TEST(Throttle, LockWaitersBlockGrowth) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // Very fast batch would double, but waiters win: shrink instead.
    const auto d = t.after_batch(full_batch(1000, 1, 1));
    EXPECT_EQ(d.next_batch, 500);
    // Zero duration with waiters: still shrinks.
    EXPECT_EQ(t.after_batch(full_batch(1000, 0, 2)).next_batch, 500);
    // A short (final) batch with waiters: shrinks too.
    EXPECT_EQ(t.after_batch(sm::BatchObservation{3, 1000, 1, 1}).next_batch, 500);
}

TEST(Throttle, LockWaitersCombineWithSlowness) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // Slow (x1/2 by timing, clamped) and waiters (x0.5): 1000 -> 250.
    EXPECT_EQ(t.after_batch(full_batch(1000, 10000, 1)).next_batch, 250);
    // Slightly slow (x0.8) and waiters: 1000 -> 400.
    EXPECT_EQ(t.after_batch(full_batch(1000, 250, 1)).next_batch, 400);
}

TEST(Throttle, LockWaitersInASimulation) {
    const SimTable table;
    sm::Throttle t{sm::ThrottleConfig{}};
    int size = t.first_batch();
    for (int i = 0; i < 60; ++i) {
        const int waiters = (i % 10 == 9) ? 1 : 0;  // contention every tenth batch
        const auto d = t.after_batch(full_batch(size, table.duration(size), waiters));
        if (waiters) {
            EXPECT_LT(d.next_batch, size);
            EXPECT_EQ(d.next_batch, static_cast<int>(std::lround(size * 0.5)));
        }
        EXPECT_LE(d.next_batch, size * 2);
        size = d.next_batch;
    }
}

TEST(Throttle, LockShrinkMovesTinyBatchesAndRespectsMin) {
    sm::ThrottleConfig c;
    c.lock_wait_shrink = 0.9;
    c.initial_batch = 2;
    sm::Throttle t(c);
    // round(2 * 0.9) == 2, but a step with waiters must not stay put.
    EXPECT_EQ(t.after_batch(full_batch(2, 200, 1)).next_batch, 1);
    EXPECT_EQ(t.after_batch(full_batch(1, 200, 1)).next_batch, 1);  // min_batch

    sm::ThrottleConfig d;
    d.min_batch = 400;
    sm::Throttle u(d);
    EXPECT_EQ(u.after_batch(full_batch(500, 200, 1)).next_batch, 400);
    EXPECT_EQ(u.after_batch(full_batch(400, 200, 3)).next_batch, 400);
}

// ---------------------------------------------------------------- clamps

TEST(Throttle, MaxBatchClamp) {
    const SimTable table{0.0001, 0.1};
    sm::ThrottleConfig c;
    c.max_batch = 5000;
    sm::Throttle t(c);
    const auto steps = run(t, table, t.first_batch(), 20);
    for (const auto& s : steps) EXPECT_LE(s.decision.next_batch, 5000);
    EXPECT_EQ(steps.back().decision.next_batch, 5000);
    expect_growth_bounded(steps, 2.0);
}

TEST(Throttle, MinBatchClamp) {
    const SimTable table{100.0, 5.0};  // 100 ms per row: ideal ~2 rows
    sm::ThrottleConfig c;
    c.min_batch = 50;
    sm::Throttle t(c);
    const auto steps = run(t, table, t.first_batch(), 20);
    for (const auto& s : steps) EXPECT_GE(s.decision.next_batch, 50);
    EXPECT_EQ(steps.back().decision.next_batch, 50);
}

TEST(Throttle, TinyBatchesAreNotFrozenByRounding) {
    // With max_growth 1.2, round(1 * 1.2) == 1: the batch must still grow.
    sm::ThrottleConfig c;
    c.initial_batch = 1;
    c.max_growth = 1.2;
    sm::Throttle t(c);
    EXPECT_EQ(t.after_batch(full_batch(1, 0.01)).next_batch, 2);
    EXPECT_EQ(t.after_batch(full_batch(2, 0.01)).next_batch, 3);
    // And shrink: 2 rows of 1 s each.
    EXPECT_EQ(t.after_batch(full_batch(2, 2000)).next_batch, 1);
    // Near target the size stays put.
    EXPECT_EQ(t.after_batch(full_batch(2, 190)).next_batch, 2);
}

TEST(Throttle, HugeSizesDoNotOverflow) {
    sm::ThrottleConfig c;
    c.max_batch = INT_MAX;
    c.initial_batch = INT_MAX / 2 + 7;
    c.max_growth = 1e9;
    sm::Throttle t(c);
    EXPECT_EQ(t.after_batch(full_batch(t.first_batch(), 0)).next_batch, INT_MAX);
    EXPECT_EQ(t.after_batch(full_batch(INT_MAX, 0.001)).next_batch, INT_MAX);
    sm::BatchObservation big{LONG_MAX, INT_MAX, 1e-300, 0};
    EXPECT_EQ(t.after_batch(big).next_batch, INT_MAX);
}

// ---------------------------------------------------------------- short / empty / zero

TEST(Throttle, FinalShortBatchDoesNotShrink) {
    const SimTable table;
    sm::Throttle t{sm::ThrottleConfig{}};
    const int size = run(t, table, t.first_batch(), 20).back().decision.next_batch;
    // Only 10 rows left: 2.5 ms, i.e. 0.25 ms/row because of the overhead.
    const auto d = t.after_batch(sm::BatchObservation{10, size, table.duration(10), 0});
    EXPECT_GE(d.next_batch, size);
    EXPECT_LE(d.next_batch, size * 2);
    // Same with a moderately short batch.
    const auto e = t.after_batch(sm::BatchObservation{size / 2, size, table.duration(size / 2), 0});
    EXPECT_GE(e.next_batch, size);
}

TEST(Throttle, ShortButSlowBatchMayShrink) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // 100 of 1000 rows, yet 1 s: even a partial batch blew the target.
    const auto d = t.after_batch(sm::BatchObservation{100, 1000, 1000, 0});
    EXPECT_EQ(d.next_batch, 500);
}

TEST(Throttle, EmptyBatch) {
    sm::Throttle t{sm::ThrottleConfig{}};
    // No rows, no time: grow by max_growth.
    EXPECT_EQ(t.after_batch(sm::BatchObservation{0, 1000, 0, 0}).next_batch, 2000);
    // No rows, fast: whole-batch timing (200 / 100 -> x2).
    EXPECT_EQ(t.after_batch(sm::BatchObservation{0, 1000, 100, 0}).next_batch, 2000);
    // No rows but slow (scanned the range, found nothing): shrink by whole-batch timing.
    EXPECT_EQ(t.after_batch(sm::BatchObservation{0, 1000, 250, 0}).next_batch, 800);
    EXPECT_DOUBLE_EQ(t.after_batch(sm::BatchObservation{0, 1000, 250, 0}).sleep_ms, 0);
}

TEST(Throttle, ZeroDurationGrowsByMaxGrowth) {
    for (double growth : {1.5, 2.0, 3.0}) {
        sm::ThrottleConfig c;
        c.max_growth = growth;
        sm::Throttle t(c);
        EXPECT_EQ(t.after_batch(full_batch(1000, 0)).next_batch, static_cast<int>(1000 * growth));
        EXPECT_EQ(t.after_batch(full_batch(1000, 1e-12)).next_batch, static_cast<int>(1000 * growth));
    }
    sm::ThrottleConfig c;
    c.max_batch = 1500;
    sm::Throttle t(c);
    EXPECT_EQ(t.after_batch(full_batch(1000, 0)).next_batch, 1500);
}

TEST(Throttle, ScalesFromObservedBatchSize) {
    sm::Throttle t{sm::ThrottleConfig{}};
    EXPECT_EQ(t.after_batch(full_batch(1000, 200)).next_batch, 1000);
    // The caller ran 300 rows (not the 1000 suggested) in 100 ms: scale from 300.
    EXPECT_EQ(t.after_batch(full_batch(300, 100)).next_batch, 600);
}

TEST(Throttle, GarbageObservationsStayInRange) {
    sm::ThrottleConfig c;
    c.min_batch = 10;
    c.max_batch = 10000;
    c.max_rows_per_second = 1000;
    sm::Throttle t(c);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const double inf = std::numeric_limits<double>::infinity();
    const sm::BatchObservation obs[] = {
        {-5, 1000, 100, 0},  {1000, 0, 100, 0},  {1000, -3, 100, -1}, {1000, 1000, -50, 0},
        {1000, 1000, nan, 0}, {1000, 1000, inf, 0}, {0, 0, 0, 0},        {LONG_MAX, INT_MAX, inf, INT_MAX},
    };
    for (const auto& o : obs) {
        sm::ThrottleDecision d{};
        EXPECT_NO_THROW(d = t.after_batch(o));
        EXPECT_GE(d.next_batch, 10);
        EXPECT_LE(d.next_batch, 10000);
        EXPECT_TRUE(std::isfinite(d.sleep_ms));
        EXPECT_GE(d.sleep_ms, 0);
        EXPECT_TRUE(std::isfinite(t.rate_rows_per_second()));
        EXPECT_GE(t.rate_rows_per_second(), 0);
    }
}

TEST(Throttle, UnknownDurationKeepsSize) {
    sm::Throttle t{sm::ThrottleConfig{}};
    EXPECT_EQ(t.after_batch(full_batch(1000, std::numeric_limits<double>::quiet_NaN())).next_batch, 1000);
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 0);  // no sample from it
    // batch_size < 1 falls back to the last decided size.
    EXPECT_EQ(t.after_batch(sm::BatchObservation{1000, 0, 200, 0}).next_batch, 1000);
}

// ---------------------------------------------------------------- sleep

TEST(Throttle, NoCapNoPauseNoSleep) {
    const SimTable table;
    sm::Throttle t{sm::ThrottleConfig{}};
    for (const auto& s : run(t, table, t.first_batch(), 20)) EXPECT_DOUBLE_EQ(s.decision.sleep_ms, 0);
}

TEST(Throttle, PauseAlwaysIncluded) {
    const SimTable table;
    sm::ThrottleConfig c;
    c.pause_ms = 50;
    sm::Throttle t(c);
    for (const auto& s : run(t, table, t.first_batch(), 20)) EXPECT_DOUBLE_EQ(s.decision.sleep_ms, 50);
    // Also for empty, short, zero-duration and contended batches.
    EXPECT_DOUBLE_EQ(t.after_batch(sm::BatchObservation{0, 1000, 0, 0}).sleep_ms, 50);
    EXPECT_DOUBLE_EQ(t.after_batch(sm::BatchObservation{5, 1000, 1, 0}).sleep_ms, 50);
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 0)).sleep_ms, 50);
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 200, 3)).sleep_ms, 50);

    c.max_rows_per_second = 5000;
    sm::Throttle u(c);
    for (const auto& s : run(u, table, u.first_batch(), 30)) EXPECT_GE(s.decision.sleep_ms, 50);
    EXPECT_GE(u.after_batch(sm::BatchObservation{0, 1000, 0, 0}).sleep_ms, 50);
}

TEST(Throttle, RateCapSleepFormula) {
    sm::ThrottleConfig c;
    c.max_rows_per_second = 10000;  // 1000 rows need 100 ms
    sm::Throttle t(c);
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 40)).sleep_ms, 60);
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 100)).sleep_ms, 0);
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 150)).sleep_ms, 0);  // already slower than the cap
    EXPECT_DOUBLE_EQ(t.after_batch(full_batch(1000, 0)).sleep_ms, 100);
    // Uses the rows actually updated.
    EXPECT_DOUBLE_EQ(t.after_batch(sm::BatchObservation{200, 1000, 5, 0}).sleep_ms, 15);
    // With a pause: the larger of the pause and what the cap needs.
    c.pause_ms = 30;
    sm::Throttle u(c);
    EXPECT_DOUBLE_EQ(u.after_batch(full_batch(1000, 40)).sleep_ms, 60);
    EXPECT_DOUBLE_EQ(u.after_batch(full_batch(1000, 90)).sleep_ms, 30);
}

TEST(Throttle, RateCapHoldsOverASimulation) {
    for (double cap : {500.0, 5000.0, 12345.0, 19000.0, 50000.0}) {
        for (double pause : {0.0, 25.0}) {
            const SimTable table;  // uncapped about 19800 rows/s at target
            sm::ThrottleConfig c;
            c.max_rows_per_second = cap;
            c.pause_ms = pause;
            sm::Throttle t(c);
            double rows = 0, ms = 0;
            int size = t.first_batch();
            for (int i = 0; i < 50; ++i) {
                const double dur = table.duration(size);
                const auto d = t.after_batch(full_batch(size, dur));
                EXPECT_GE(d.sleep_ms, pause);
                EXPECT_LE(size * 1000.0 / (dur + d.sleep_ms), cap * (1 + 1e-9));  // each batch, too
                rows += size;
                ms += dur + d.sleep_ms;
                size = d.next_batch;
            }
            const double throughput = rows * 1000.0 / ms;
            EXPECT_LE(throughput, cap * 1.01) << "cap " << cap << " pause " << pause;
            if (pause == 0 && cap < 19000) {
                EXPECT_GE(throughput, cap * 0.99) << "cap " << cap;  // not overly slow
            }
        }
    }
}

TEST(Throttle, RateCapDoesNotChangeBatchSizing) {
    const SimTable table;
    sm::ThrottleConfig capped;
    capped.max_rows_per_second = 1000;
    sm::Throttle a{sm::ThrottleConfig{}};
    sm::Throttle b(capped);
    const auto sa = run(a, table, a.first_batch(), 20);
    const auto sb = run(b, table, b.first_batch(), 20);
    for (std::size_t i = 0; i < sa.size(); ++i) EXPECT_EQ(sa[i].decision.next_batch, sb[i].decision.next_batch);
}

// ---------------------------------------------------------------- rate and eta

TEST(Throttle, RateEwma) {
    sm::ThrottleConfig c;
    c.pause_ms = 100;
    sm::Throttle t(c);
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 0);
    // First batch: no sleep before it. 1000 rows / 100 ms = 10000 rows/s (seeds the EWMA).
    t.after_batch(full_batch(1000, 100));
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 10000);
    // Second: 1000 rows / (100 ms + 100 ms sleep) = 5000 -> 0.7 * 10000 + 0.3 * 5000.
    t.after_batch(full_batch(1000, 100));
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 8500);
    // Third: 500 rows / (150 + 100) = 2000 -> 0.7 * 8500 + 0.3 * 2000.
    t.after_batch(sm::BatchObservation{500, 1000, 150, 0});
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 6550);
}

TEST(Throttle, RateConvergesToSteadyThroughput) {
    sm::ThrottleConfig c;
    c.max_rows_per_second = 4000;
    sm::Throttle t(c);
    const SimTable table;
    run(t, table, t.first_batch(), 60);
    EXPECT_NEAR(t.rate_rows_per_second(), 4000, 40);
    EXPECT_NEAR(sm::eta_seconds(1e6, t.rate_rows_per_second()), 250, 3);
}

TEST(Throttle, RateSkipsSamplesWithoutElapsedTime) {
    sm::Throttle t{sm::ThrottleConfig{}};
    t.after_batch(full_batch(1000, 0));  // zero time, no previous sleep: no sample
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 0);
    t.after_batch(full_batch(1000, 500));
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 2000);
    t.after_batch(sm::BatchObservation{0, 1000, 100, 0});  // empty batch: a sample of 0
    EXPECT_DOUBLE_EQ(t.rate_rows_per_second(), 1400);
}

TEST(Throttle, Deterministic) {
    SimTable table{0.07, 3.0};
    sm::ThrottleConfig c;
    c.max_rows_per_second = 7000;
    c.pause_ms = 5;
    sm::Throttle a(c), b(c);
    int sa = a.first_batch(), sb = b.first_batch();
    for (int i = 0; i < 40; ++i) {
        const int waiters = (i % 7 == 3) ? 2 : 0;
        const auto da = a.after_batch(full_batch(sa, table.duration(sa), waiters));
        const auto db = b.after_batch(full_batch(sb, table.duration(sb), waiters));
        EXPECT_EQ(da.next_batch, db.next_batch);
        EXPECT_EQ(da.sleep_ms, db.sleep_ms);
        EXPECT_EQ(a.rate_rows_per_second(), b.rate_rows_per_second());
        sa = da.next_batch;
        sb = db.next_batch;
    }
}

TEST(Eta, Basics) {
    EXPECT_DOUBLE_EQ(sm::eta_seconds(1000, 100), 10);
    EXPECT_DOUBLE_EQ(sm::eta_seconds(1, 4), 0.25);
    EXPECT_DOUBLE_EQ(sm::eta_seconds(0, 100), 0);
    EXPECT_DOUBLE_EQ(sm::eta_seconds(-5, 100), 0);
    EXPECT_LT(sm::eta_seconds(1000, 0), 0);
    EXPECT_LT(sm::eta_seconds(0, 0), 0);
    EXPECT_LT(sm::eta_seconds(1000, -3), 0);
    EXPECT_LT(sm::eta_seconds(1000, std::numeric_limits<double>::quiet_NaN()), 0);
    EXPECT_LT(sm::eta_seconds(std::numeric_limits<double>::quiet_NaN(), 100), 0);
}

TEST(Eta, FromThrottleRate) {
    sm::Throttle t{sm::ThrottleConfig{}};
    EXPECT_LT(sm::eta_seconds(1000, t.rate_rows_per_second()), 0);  // unknown before any batch
    t.after_batch(full_batch(1000, 200));                            // 5000 rows/s
    EXPECT_DOUBLE_EQ(sm::eta_seconds(25000, t.rate_rows_per_second()), 5);
}
