#include "latency.hpp"

#include <cmath>

namespace safe_migrate::core {

namespace {

double lower_us(int b) {
    if (b <= 0) return 0;
    const int m = 4 + (b - 1) / 4;
    const int sub = (b - 1) % 4;
    return std::ldexp(1.0, m) + sub * std::ldexp(1.0, m - 2);
}

}  // namespace

double latency_bucket_lower_ms(int bucket) noexcept {
    if (bucket < 0) bucket = 0;
    if (bucket >= kLatencyBuckets) bucket = kLatencyBuckets - 1;
    return lower_us(bucket) / 1000.0;
}

double latency_bucket_upper_ms(int bucket) noexcept {
    if (bucket < 0) bucket = 0;
    if (bucket >= kLatencyBuckets - 1) return 2 * latency_bucket_lower_ms(kLatencyBuckets - 1);
    return lower_us(bucket + 1) / 1000.0;
}

std::uint64_t LatencyCounts::total() const noexcept {
    std::uint64_t t = 0;
    for (std::uint32_t v : n) t += v;
    return t;
}

LatencyCounts LatencyCounts::between(const LatencyCounts& earlier, const LatencyCounts& later) noexcept {
    LatencyCounts d;
    for (int i = 0; i < kLatencyBuckets; ++i) d.n[i] = later.n[i] - earlier.n[i];
    return d;
}

void LatencyHistogram::add(const LatencyCounts& c) noexcept {
    for (int i = 0; i < kLatencyBuckets; ++i)
        if (c.n[i]) add(i, c.n[i]);
}

void LatencyHistogram::add(int bucket, double weight) noexcept {
    if (!(weight > 0) || !std::isfinite(weight)) return;
    if (bucket < 0) bucket = 0;
    if (bucket >= kLatencyBuckets) bucket = kLatencyBuckets - 1;
    w_[bucket] += weight;
    total_ += weight;
}

void LatencyHistogram::decay(double factor) noexcept {
    if (!(factor >= 0)) factor = 0;
    if (factor >= 1) return;
    total_ = 0;
    for (double& v : w_) {
        v *= factor;
        if (v < 1e-9) v = 0;
        total_ += v;
    }
}

void LatencyHistogram::clear() noexcept {
    for (double& v : w_) v = 0;
    total_ = 0;
}

double LatencyHistogram::quantile_ms(double q) const noexcept {
    if (!(total_ > 0)) return -1;
    if (!(q > 0)) q = 0;
    if (q > 1) q = 1;
    const double target = q * total_;
    double below = 0;
    for (int i = 0; i < kLatencyBuckets; ++i) {
        if (w_[i] <= 0) continue;
        if (below + w_[i] >= target) {
            const double lo = latency_bucket_lower_ms(i), hi = latency_bucket_upper_ms(i);
            return lo + (hi - lo) * ((target - below) / w_[i]);
        }
        below += w_[i];
    }
    // rounding: the highest non-empty bucket's upper bound
    for (int i = kLatencyBuckets - 1; i >= 0; --i)
        if (w_[i] > 0) return latency_bucket_upper_ms(i);
    return -1;
}

}  // namespace safe_migrate::core
