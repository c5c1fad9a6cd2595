/*
 * latency.hpp — the application's statement latencies as counts in
 * buckets: what each session records when its transaction ends (in shared
 * memory, cheaply: one bucket index and one counter), and what the pacer
 * reads back as a distribution over a time window.
 *
 * Buckets: 0 holds latencies below 16 us; above that, four buckets per
 * doubling (each at most 25 % wide); the last bucket holds everything
 * from 0.79 s on.  Pure C++, no PostgreSQL, no allocation.
 */
#pragma once

#include <cstdint>

namespace safe_migrate::core {

inline constexpr int kLatencyBuckets = 64;

// The bucket of a latency in microseconds.
constexpr int latency_bucket(std::uint64_t us) noexcept {
    if (us < 16) return 0;
    int msb = 63;
    while (!(us >> msb)) --msb;  // msb >= 4 here
    const int sub = static_cast<int>((us >> (msb - 2)) & 3);
    const int i = (msb - 4) * 4 + sub + 1;
    return i < kLatencyBuckets ? i : kLatencyBuckets - 1;
}

// The bounds of a bucket, in milliseconds (the last one's upper bound is
// its lower bound doubled: a guess for everything beyond about a second).
double latency_bucket_lower_ms(int bucket) noexcept;
double latency_bucket_upper_ms(int bucket) noexcept;

// Counts per bucket over some window (a difference of two readings of the
// counters, which only grow and wrap around at 2^32).
struct LatencyCounts {
    std::uint32_t n[kLatencyBuckets] = {};
    std::uint64_t total() const noexcept;
    // later - earlier, bucket by bucket (modulo 2^32)
    static LatencyCounts between(const LatencyCounts& earlier, const LatencyCounts& later) noexcept;
};

// A distribution whose old observations fade: decay(f) multiplies every
// bucket by f.  Quantiles interpolate within a bucket.
class LatencyHistogram {
public:
    void add(const LatencyCounts& c) noexcept;
    void add(int bucket, double weight) noexcept;
    void decay(double factor) noexcept;  // factor in [0, 1]
    void clear() noexcept;
    double total() const noexcept { return total_; }
    // the q-quantile (0 < q < 1) in ms; < 0 when empty
    double quantile_ms(double q) const noexcept;

private:
    double w_[kLatencyBuckets] = {};
    double total_ = 0;
};

}  // namespace safe_migrate::core
