#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "core/backoff.hpp"

namespace sm = safe_migrate::core;

namespace {
sm::BackoffPolicy no_jitter() {
    sm::BackoffPolicy p;
    p.jitter = 0.0;
    return p;
}
}  // namespace

TEST(Backoff, DefaultPolicy) {
    const sm::BackoffPolicy p;
    EXPECT_EQ(p.base_ms, 100);
    EXPECT_EQ(p.cap_ms, 10000);
    EXPECT_DOUBLE_EQ(p.jitter, 0.5);
}

TEST(Backoff, ExponentialWithoutJitter) {
    const auto p = no_jitter();
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.3), 100);
    EXPECT_EQ(sm::backoff_delay_ms(2, p, 0.3), 200);
    EXPECT_EQ(sm::backoff_delay_ms(3, p, 0.3), 400);
    EXPECT_EQ(sm::backoff_delay_ms(4, p, 0.3), 800);
    EXPECT_EQ(sm::backoff_delay_ms(7, p, 0.3), 6400);
    EXPECT_EQ(sm::backoff_delay_ms(8, p, 0.3), 10000);  // 12800 capped
    EXPECT_EQ(sm::backoff_delay_ms(30, p, 0.3), 10000);
}

TEST(Backoff, MonotonicUpToCapForFixedRandom) {
    const sm::BackoffPolicy p;
    for (double u : {0.0, 0.25, 0.5, 0.999999}) {
        int prev = -1;
        for (int attempt = 1; attempt <= 100; ++attempt) {
            const int d = sm::backoff_delay_ms(attempt, p, u);
            EXPECT_GE(d, prev) << "attempt " << attempt << " u " << u;
            EXPECT_LE(d, p.cap_ms);
            prev = d;
        }
        EXPECT_GE(prev, static_cast<int>(p.cap_ms * (1 - p.jitter)));
    }
}

TEST(Backoff, JitterBounds) {
    const sm::BackoffPolicy p;  // jitter 0.5
    for (int attempt = 1; attempt <= 12; ++attempt) {
        const int full = sm::backoff_delay_ms(attempt, no_jitter(), 0.0);
        for (int i = 0; i < 1000; ++i) {
            const double u = i / 1000.0;
            const int d = sm::backoff_delay_ms(attempt, p, u);
            EXPECT_GE(d, full / 2) << attempt << " " << u;
            EXPECT_LE(d, full) << attempt << " " << u;
        }
    }
}

TEST(Backoff, JitterEndpoints) {
    const sm::BackoffPolicy p;  // base 100, jitter 0.5
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.0), 50);
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.5), 75);
    const double almost_one = std::nextafter(1.0, 0.0);
    EXPECT_GE(sm::backoff_delay_ms(1, p, almost_one), 99);
    EXPECT_LE(sm::backoff_delay_ms(1, p, almost_one), 100);
    EXPECT_EQ(sm::backoff_delay_ms(20, p, 0.0), 5000);
}

TEST(Backoff, FullJitterSpansZeroToDelay) {
    sm::BackoffPolicy p;
    p.jitter = 1.0;
    EXPECT_EQ(sm::backoff_delay_ms(3, p, 0.0), 0);
    EXPECT_EQ(sm::backoff_delay_ms(3, p, 0.5), 200);
}

TEST(Backoff, HugeAttemptNumbers) {
    const sm::BackoffPolicy p;
    for (int attempt : {31, 32, 33, 62, 63, 64, 65, 1000, 1 << 20, INT_MAX - 1, INT_MAX}) {
        EXPECT_EQ(sm::backoff_delay_ms(attempt, no_jitter(), 0.5), 10000) << attempt;
        const int d = sm::backoff_delay_ms(attempt, p, 0.5);
        EXPECT_GE(d, 5000) << attempt;
        EXPECT_LE(d, 10000) << attempt;
    }
}

TEST(Backoff, ExtremePolicies) {
    sm::BackoffPolicy p;
    p.base_ms = INT_MAX;
    p.cap_ms = INT_MAX;
    p.jitter = 0.0;
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.0), INT_MAX);
    EXPECT_EQ(sm::backoff_delay_ms(2, p, 0.0), INT_MAX);
    EXPECT_EQ(sm::backoff_delay_ms(INT_MAX, p, 0.0), INT_MAX);

    p.base_ms = 1;
    for (int attempt = 1; attempt <= 40; ++attempt) {
        const int d = sm::backoff_delay_ms(attempt, p, 0.0);
        EXPECT_GE(d, 1);
        EXPECT_LE(d, INT_MAX);
        const long long expected = attempt <= 32 ? std::min<long long>(1LL << (attempt - 1), INT_MAX) : INT_MAX;
        EXPECT_EQ(d, expected) << attempt;
    }
}

TEST(Backoff, CapBelowBase) {
    sm::BackoffPolicy p;
    p.base_ms = 500;
    p.cap_ms = 200;
    p.jitter = 0.0;
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.0), 200);
    EXPECT_EQ(sm::backoff_delay_ms(5, p, 0.0), 200);
}

TEST(Backoff, OutOfRangeInputsAreClamped) {
    const sm::BackoffPolicy p;
    // attempt < 1 behaves like attempt 1.
    EXPECT_EQ(sm::backoff_delay_ms(0, no_jitter(), 0.0), 100);
    EXPECT_EQ(sm::backoff_delay_ms(-5, no_jitter(), 0.0), 100);
    EXPECT_EQ(sm::backoff_delay_ms(INT_MIN, no_jitter(), 0.0), 100);

    // unit_random outside [0, 1) / NaN.
    EXPECT_EQ(sm::backoff_delay_ms(1, p, -3.0), 50);
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 7.0), 100);
    EXPECT_EQ(sm::backoff_delay_ms(1, p, std::numeric_limits<double>::quiet_NaN()), 50);
    EXPECT_EQ(sm::backoff_delay_ms(1, p, std::numeric_limits<double>::infinity()), 100);

    // jitter outside [0, 1] / NaN.
    sm::BackoffPolicy q;
    q.jitter = -1.0;
    EXPECT_EQ(sm::backoff_delay_ms(1, q, 0.0), 100);
    q.jitter = 5.0;
    EXPECT_EQ(sm::backoff_delay_ms(1, q, 0.0), 0);
    q.jitter = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(sm::backoff_delay_ms(1, q, 0.0), 100);

    // Negative base / cap never give a negative delay.
    sm::BackoffPolicy neg;
    neg.base_ms = -100;
    EXPECT_EQ(sm::backoff_delay_ms(3, neg, 0.5), 0);
    neg.base_ms = 100;
    neg.cap_ms = -1;
    EXPECT_EQ(sm::backoff_delay_ms(3, neg, 0.5), 0);
    neg.base_ms = INT_MIN;
    neg.cap_ms = INT_MIN;
    EXPECT_EQ(sm::backoff_delay_ms(INT_MAX, neg, 0.5), 0);
}

TEST(Backoff, ZeroBase) {
    sm::BackoffPolicy p;
    p.base_ms = 0;
    EXPECT_EQ(sm::backoff_delay_ms(1, p, 0.9), 0);
    EXPECT_EQ(sm::backoff_delay_ms(INT_MAX, p, 0.9), 0);
}
