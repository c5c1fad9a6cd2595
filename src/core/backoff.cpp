#include "backoff.hpp"

#include <cmath>
#include <cstdint>

namespace safe_migrate::core {
namespace {

double clamp01(double v) {
    if (!(v > 0.0)) return 0.0;  // also catches NaN
    if (v > 1.0) return 1.0;
    return v;
}

}  // namespace

int backoff_delay_ms(int attempt, const BackoffPolicy& p, double unit_random) {
    const std::int64_t base = p.base_ms > 0 ? p.base_ms : 0;
    const std::int64_t cap = p.cap_ms > 0 ? p.cap_ms : 0;
    const int exponent = attempt > 1 ? attempt - 1 : 0;

    // base < 2^31, so base << 31 < 2^62 still fits; any larger exponent is
    // certainly beyond an int cap (unless base is 0).
    std::int64_t delay;
    if (base == 0) {
        delay = 0;
    } else if (exponent >= 31) {
        delay = cap;
    } else {
        delay = base << exponent;
        if (delay > cap) delay = cap;
    }

    // delay * (1 - jitter * (1 - u)) lies in [delay * (1 - jitter), delay]; a
    // single factor independent of attempt keeps the result monotonic.
    const double jitter = clamp01(p.jitter);
    const double u = clamp01(unit_random);
    const double factor = 1.0 - jitter * (1.0 - u);
    double scaled = std::floor(static_cast<double>(delay) * factor);
    if (scaled < 0.0) scaled = 0.0;
    if (scaled > static_cast<double>(delay)) scaled = static_cast<double>(delay);
    return static_cast<int>(scaled);
}

}  // namespace safe_migrate::core
