#include "throttle.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace safe_migrate::core {
namespace {

constexpr double kRateAlpha = 0.3;

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

[[noreturn]] void bad(const std::string& what) { throw ScriptError("throttle: " + what); }

int clamp_batch(double v, const ThrottleConfig& c) {
    if (!(v >= c.min_batch)) return c.min_batch;  // also catches NaN
    if (v >= c.max_batch) return c.max_batch;
    return static_cast<int>(v);
}

}  // namespace

void validate(const ThrottleConfig& c) {
    if (c.min_batch < 1) bad("min_batch must be at least 1 (got " + std::to_string(c.min_batch) + ")");
    if (c.max_batch < c.min_batch)
        bad("min_batch (" + std::to_string(c.min_batch) + ") must not exceed max_batch (" +
            std::to_string(c.max_batch) + ")");
    if (c.initial_batch < 1)
        bad("initial_batch must be at least 1 (got " + std::to_string(c.initial_batch) + ")");
    if (!std::isfinite(c.target_batch_ms) || c.target_batch_ms <= 0)
        bad("target_batch_ms must be a finite number greater than 0 (got " + num(c.target_batch_ms) + ")");
    if (!std::isfinite(c.max_rows_per_second) || c.max_rows_per_second < 0)
        bad("max_rows_per_second must be a finite number, 0 for no cap (got " + num(c.max_rows_per_second) +
            ")");
    if (!std::isfinite(c.pause_ms) || c.pause_ms < 0)
        bad("pause_ms must be a finite number of at least 0 (got " + num(c.pause_ms) + ")");
    if (!std::isfinite(c.max_growth) || c.max_growth <= 1)
        bad("max_growth must be a finite number greater than 1 (got " + num(c.max_growth) + ")");
    if (!(c.lock_wait_shrink > 0 && c.lock_wait_shrink < 1))
        bad("lock_wait_shrink must lie strictly between 0 and 1 (got " + num(c.lock_wait_shrink) + ")");
}

Throttle::Throttle(ThrottleConfig config) : config_(config), current_batch_(0) {
    validate(config_);
    current_batch_ = clamp_batch(config_.initial_batch, config_);
}

int Throttle::first_batch() const { return clamp_batch(config_.initial_batch, config_); }

double Throttle::rate_rows_per_second() const { return rate_; }

const ThrottleConfig& Throttle::config() const { return config_; }

void Throttle::set_target_batch_ms(double target_ms) {
    if (!std::isfinite(target_ms) || target_ms <= 0)
        bad("target_batch_ms must be a finite number greater than 0 (got " + num(target_ms) + ")");
    config_.target_batch_ms = target_ms;
}

ThrottleDecision Throttle::after_batch(const BatchObservation& obs) {
    const ThrottleConfig& c = config_;
    const double growth = c.max_growth;

    const double rows = obs.rows > 0 ? static_cast<double>(obs.rows) : 0.0;
    const double base = obs.batch_size >= 1 ? obs.batch_size : current_batch_;
    const bool duration_unknown = std::isnan(obs.duration_ms);
    const double duration = (duration_unknown || obs.duration_ms < 0) ? 0.0 : obs.duration_ms;
    const bool waiters = obs.lock_waiters > 0;

    // Timing factor: how much the batch should change to take target_batch_ms.
    double raw;
    if (duration_unknown) {
        raw = 1.0;
    } else if (duration <= 0) {
        raw = growth;
    } else if (rows > 0) {
        const double ms_per_row = duration / rows;
        raw = (c.target_batch_ms / ms_per_row) / base;
    } else {
        raw = c.target_batch_ms / duration;
    }
    // A short batch that stayed within target says little about per-row cost
    // (its fixed overhead is spread over few rows): do not shrink from it.
    if (rows < base && duration <= c.target_batch_ms && raw < 1.0) raw = 1.0;

    const bool at_upper = raw >= growth;
    const bool at_lower = raw <= 1.0 / growth;
    double factor = std::min(std::max(raw, 1.0 / growth), growth);
    if (waiters) factor = std::min(factor, 1.0) * c.lock_wait_shrink;

    const double want = base * factor;
    double next = want >= c.max_batch ? static_cast<double>(c.max_batch) : std::round(want);
    if (waiters) {
        if (next >= base) next = base - 1;  // a step with waiters never stays put or grows
    } else {
        // Rounding must neither exceed the per-step bounds ...
        next = std::min(next, std::floor(base * growth));
        next = std::max(next, std::ceil(base / growth));
        // ... nor freeze tiny batches when a change is clearly asked for.
        if (at_upper && next <= base) next = base + 1;
        if (at_lower && next >= base) next = base - 1;
    }
    const int next_batch = clamp_batch(next, c);

    double sleep = c.pause_ms;
    if (c.max_rows_per_second > 0 && rows > 0) {
        const double needed = rows * 1000.0 / c.max_rows_per_second - duration;
        sleep = std::max(sleep, needed);
    }

    if (!duration_unknown) {
        const double elapsed = duration + prev_sleep_ms_;
        if (elapsed > 0 && std::isfinite(elapsed)) {
            const double sample = rows * 1000.0 / elapsed;
            rate_ = have_rate_ ? (1.0 - kRateAlpha) * rate_ + kRateAlpha * sample : sample;
            have_rate_ = true;
        }
    }

    prev_sleep_ms_ = sleep;
    current_batch_ = next_batch;
    return ThrottleDecision{next_batch, sleep};
}

double eta_seconds(double rows_remaining, double rate_rows_per_second) {
    if (std::isnan(rows_remaining) || !(rate_rows_per_second > 0)) return -1.0;
    if (rows_remaining <= 0) return 0.0;
    return rows_remaining / rate_rows_per_second;
}

}  // namespace safe_migrate::core
