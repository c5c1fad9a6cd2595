#pragma once

namespace safe_migrate::core {

struct BackoffPolicy {
    int base_ms = 100;
    int cap_ms = 10000;
    double jitter = 0.5;  // fraction of the delay that is randomised, in [0, 1]
};

// Delay before retry number `attempt` (1-based: the first retry is 1).
// Exponential base_ms * 2^(attempt-1), capped at cap_ms; then jitter spreads it
// uniformly over [d * (1 - jitter), d] using `unit_random` in [0, 1).
// Out-of-range inputs are clamped (attempt < 1 -> 1, negative base/cap -> 0,
// jitter to [0, 1], unit_random to [0, 1], NaN -> 0). The result is never
// negative, never exceeds max(cap_ms, 0), and for a fixed unit_random is
// non-decreasing in attempt, for any attempt up to INT_MAX.
int backoff_delay_ms(int attempt, const BackoffPolicy& p, double unit_random);

}  // namespace safe_migrate::core
