#include "pacer.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace safe_migrate::core {
namespace {

std::string num(double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

[[noreturn]] void bad(const std::string& what) { throw ScriptError("pacer: " + what); }

void finite_at_least(const char* name, double v, double low, bool strict) {
    if (!std::isfinite(v) || (strict ? v <= low : v < low))
        bad(std::string(name) + " must be a finite number " + (strict ? "greater than " : "of at least ") +
            num(low) + " (got " + num(v) + ")");
}

void fraction(const char* name, double v, bool one_included) {
    if (!(v > 0 && (one_included ? v <= 1 : v < 1)))
        bad(std::string(name) + " must lie in (0, 1" + (one_included ? "]" : ")") + " (got " + num(v) + ")");
}

}  // namespace

void validate(const PacerConfig& c) {
    finite_at_least("latency_budget_ms", c.latency_budget_ms, 0, false);
    fraction("quantile", c.quantile, false);
    finite_at_least("min_samples", c.min_samples, 0, false);
    finite_at_least("recent_window_ms", c.recent_window_ms, 0, true);
    fraction("baseline_keep", c.baseline_keep, false);
    finite_at_least("busy_batch_ms", c.busy_batch_ms, 0, true);
    finite_at_least("busy_floor_multiple", c.busy_floor_multiple, 1, false);
    finite_at_least("idle_after_ms", c.idle_after_ms, 0, false);
    finite_at_least("min_foreground_rate", c.min_foreground_rate, 0, false);
    fraction("min_duty", c.min_duty, true);
    fraction("initial_duty", c.initial_duty, true);
    if (c.initial_duty < c.min_duty)
        bad("initial_duty (" + num(c.initial_duty) + ") must not be below min_duty (" + num(c.min_duty) + ")");
    finite_at_least("duty_increase_per_s", c.duty_increase_per_s, 0, true);
    fraction("duty_cut", c.duty_cut, false);
    finite_at_least("cut_interval_ms", c.cut_interval_ms, 0, false);
    finite_at_least("quiet_ms", c.quiet_ms, 0, false);
    finite_at_least("quiet_measure_ms", c.quiet_measure_ms, 0, true);
    if (c.quiet_measure_ms > c.quiet_ms)
        bad("quiet_measure_ms (" + num(c.quiet_measure_ms) + ") must not exceed quiet_ms (" + num(c.quiet_ms) + ")");
    finite_at_least("first_quiet_ms", c.first_quiet_ms, 0, false);
    if (c.quiet_measure_ms > c.first_quiet_ms || c.first_quiet_ms > c.quiet_ms)
        bad("first_quiet_ms (" + num(c.first_quiet_ms) + ") must lie between quiet_measure_ms (" +
            num(c.quiet_measure_ms) + ") and quiet_ms (" + num(c.quiet_ms) + ")");
    finite_at_least("baseline_interval_ms", c.baseline_interval_ms, 0, false);
    finite_at_least("baseline_fill_interval_ms", c.baseline_fill_interval_ms, 0, true);
    if (c.baseline_fill_interval_ms > c.baseline_interval_ms)
        bad("baseline_fill_interval_ms (" + num(c.baseline_fill_interval_ms) +
            ") must not exceed baseline_interval_ms (" + num(c.baseline_interval_ms) + ")");
}

void make_eager(PacerConfig& c) {
    c.initial_duty = 1;
    c.baseline_interval_ms = std::max(c.baseline_interval_ms, kEagerBaselineIntervalMs);
    c.baseline_fill_interval_ms = c.baseline_interval_ms;
}

const char* held_by_name(HeldBy h) {
    switch (h) {
    case HeldBy::Nothing: return "";
    case HeldBy::ForegroundLatency: return "foreground latency";
    case HeldBy::LockWaiters: return "lock waiters";
    case HeldBy::ForegroundActive: return "foreground active";
    case HeldBy::RateCap: return "rate cap";
    case HeldBy::Pause: return "pause";
    }
    return "";
}

Pacer::Pacer(ThrottleConfig throttle, PacerConfig pacer)
    : throttle_(throttle), cfg_(pacer), full_target_ms_(throttle.target_batch_ms) {
    validate(cfg_);
}

int Pacer::first_batch() const { return throttle_.first_batch(); }
double Pacer::rate_rows_per_second() const { return rate_; }
double Pacer::duty() const { return duty_; }
bool Pacer::foreground_present() const { return present_; }
double Pacer::foreground_rate() const { return fg_rate_; }
double Pacer::recent_ms() const {
    return recent_.total() >= cfg_.min_samples && recent_.total() > 0 ? recent_.quantile_ms(cfg_.quantile) : -1;
}
double Pacer::foreground_ms() const { return shown_ms_; }
double Pacer::baseline_ms() const {
    // the lowest of the last quiet windows that had enough statements: one
    // outlier (the server's own stall) caught in a quiet window must not
    // raise the normal and switch the control off for the windows after it
    double best = -1;
    for (int i = 0; i < kQuietWindows; ++i)
        if (quiet_q_[i] >= 0 && (best < 0 || quiet_q_[i] < best)) best = quiet_q_[i];
    if (best >= 0) return best;
    // a sparse application: what the quiet windows gathered together
    return baseline_.total() >= cfg_.min_samples && baseline_.total() > 0 ? baseline_.quantile_ms(cfg_.quantile)
                                                                           : -1;
}
double Pacer::excess_ms() const {
    const double f = recent_ms(), b = baseline_ms();
    return f >= 0 && b >= 0 ? f - b : 0;
}
HeldBy Pacer::held_by() const { return held_; }
double Pacer::elapsed_ms() const { return now_; }
double Pacer::floor_ms() const { return floor_ms_; }
double Pacer::busy_target_ms() const {
    return std::min(full_target_ms_, std::max(cfg_.busy_batch_ms, cfg_.busy_floor_multiple * floor_ms_));
}
const PacerConfig& Pacer::config() const { return cfg_; }

PaceDecision Pacer::after_batch(const PaceObservation& obs) {
    const PacerConfig& c = cfg_;
    const bool duration_known = std::isfinite(obs.duration_ms) && obs.duration_ms >= 0;
    const double duration = duration_known ? obs.duration_ms : 0.0;
    const double step = duration + prev_sleep_;
    now_ += step;
    work_ms_ += duration;

    // The rate, from what really happened: the batch and the sleep before it.
    if (step > 0 && duration_known) {
        const double sample = std::max(0L, obs.rows) * 1000.0 / step;
        if (!have_rate_) {
            rate_ = sample;
            have_rate_ = true;
        } else {
            const double w = 1 - std::exp(-step / 1000.0);
            rate_ += w * (sample - rate_);
        }
    }

    // Is the application there?
    const ForegroundSample& fg = obs.foreground;
    const int seen = std::max(0, fg.started) + std::max(0, fg.active);
    if (step > 0) {
        const double w = 1 - std::exp(-step / 1000.0);
        fg_rate_ += w * (seen * 1000.0 / step - fg_rate_);
    }
    if (seen > 0) last_foreground_ = now_;
    bool arrived = false;
    if (!present_) {
        if (seen > 0 && fg_rate_ >= c.min_foreground_rate) {
            // it arrives (or is there from the start): start gently, and
            // measure what the server is like without us
            present_ = true;
            arrived = true;
            quiet_since_arrival_ = 0;
            duty_ = std::min(duty_, c.initial_duty);
        }
    } else if (now_ - last_foreground_ >= c.idle_after_ms) {
        present_ = false;
    }

    // What the application felt: the statements that ended in this step
    // (older ones fade), and apart, those of a quiet time we asked for.
    if (step > 0) recent_.decay(std::exp(-step / c.recent_window_ms));
    if (obs.have_latency) {
        recent_.add(obs.latency);
        if (quiet_asked_) {
            if (obs.quiet_latency.total() > 0) {
                baseline_.decay(c.baseline_keep);
                baseline_.add(obs.quiet_latency);
                LatencyHistogram window;
                window.add(obs.quiet_latency);
                if (window.total() >= c.min_samples / 2) {
                    quiet_q_[quiet_next_] = window.quantile_ms(c.quantile);
                    quiet_next_ = (quiet_next_ + 1) % kQuietWindows;
                }
            }
            last_quiet_at_ = now_;
            ++quiet_since_arrival_;
        }
    }
    quiet_asked_ = false;
    // what is shown stays the last value judged by (a cut starts a new window)
    if (recent_ms() >= 0) shown_ms_ = recent_ms();
    const bool judged = recent_ms() >= 0 && baseline_ms() >= 0;
    // a quiet time was measured and still too few statements ended in it
    const bool sparse = last_quiet_at_ > -1e17 && baseline_ms() < 0;

    // The duty cycle.
    const bool control = c.latency_budget_ms > 0;
    HeldBy cut_by = HeldBy::Nothing;
    if (obs.lock_waiters > 0)
        cut_by = HeldBy::LockWaiters;
    else if (control && present_ && judged && excess_ms() > c.latency_budget_ms)
        cut_by = HeldBy::ForegroundLatency;
    if (!present_ && cut_by != HeldBy::LockWaiters) {
        duty_ = 1;  // nobody is there: full speed
        reason_ = HeldBy::Nothing;
    } else if (cut_by != HeldBy::Nothing) {
        if (now_ - last_cut_ >= c.cut_interval_ms) {
            duty_ = std::max(c.min_duty, duty_ * c.duty_cut);
            last_cut_ = now_;
            // judge what comes after the cut: one event is not punished
            // again for as long as it stays in the recent window
            if (cut_by == HeldBy::ForegroundLatency) recent_.clear();
        }
        reason_ = cut_by;
    } else if (!control) {
        duty_ = 1;
        reason_ = HeldBy::Nothing;
    } else if (!arrived && (judged ? excess_ms() <= c.latency_budget_ms : sparse)) {
        // within the budget, or an application too sparse to judge by: grow
        duty_ = std::min(1.0, duty_ + c.duty_increase_per_s * step / 1000.0);
        if (duty_ >= 1) reason_ = HeldBy::Nothing;
    }

    // The least a batch costs, measured at the Throttle's least size (see
    // the header); a batch of any size quicker than it lowers it.
    if (duration_known && duration > 0) {
        if (obs.batch_size > 0 && obs.batch_size <= throttle_.config().min_batch) {
            at_min_ms_[at_min_seen_ % kFloorSamples] = duration;
            ++at_min_seen_;
            if (at_min_seen_ >= kFloorSamples)
                floor_ms_ = *std::min_element(at_min_ms_, at_min_ms_ + kFloorSamples);
        } else if (floor_ms_ > 0 && duration < floor_ms_) {
            floor_ms_ = duration;
        }
    }

    // Batch size: the Throttle, aiming at short batches while the
    // application is there.
    const double target = present_ && control ? busy_target_ms() : full_target_ms_;
    throttle_.set_target_batch_ms(target);
    BatchObservation bo{obs.rows, obs.batch_size, duration_known ? obs.duration_ms : std::nan(""),
                        obs.lock_waiters};
    const ThrottleDecision td = throttle_.after_batch(bo);

    // The sleep that keeps the duty cycle: batch / (batch + sleep) = duty.
    double duty_sleep = 0;
    if (duty_ < 1 && duration > 0) duty_sleep = duration * (1 - duty_) / duty_;
    PaceDecision d;
    d.next_batch = td.next_batch;
    d.sleep_ms = std::max(td.sleep_ms, duty_sleep);

    if (td.sleep_ms > duty_sleep && td.sleep_ms > 0)
        held_ = td.sleep_ms > throttle_.config().pause_ms ? HeldBy::RateCap : HeldBy::Pause;
    else if (duty_ < 1)
        held_ = reason_ != HeldBy::Nothing ? reason_ : HeldBy::ForegroundActive;
    else if (present_ && control && target < full_target_ms_)
        held_ = HeldBy::ForegroundActive;
    else
        held_ = HeldBy::Nothing;
    d.held_by = held_;

    // A quiet time: when the application arrives, when the baseline is
    // old or not enough to judge by, or for free when the sleep is long
    // enough anyway.  Right after the arrival, one quiet window is all the
    // baseline has: if it caught a stall of the server, nothing the job
    // does looks like an excess until the next one.  So the first few
    // come sooner.
    if (present_ && control) {
        const double interval = quiet_since_arrival_ < kQuietWindows ? c.baseline_fill_interval_ms
                                                                     : c.baseline_interval_ms;
        const bool stale = now_ - last_quiet_at_ >= interval;
        if (arrived || stale) {
            // (found there after the job's first batch, or its first few
            // short ones, only those have to fade: as long as they took
            // no longer in all than the short window leaves them)
            const bool little_done = work_ms_ <= c.first_quiet_ms - c.quiet_measure_ms;
            d.sleep_ms = std::max(d.sleep_ms, arrived && little_done ? c.first_quiet_ms : c.quiet_ms);
            d.quiet_probe = true;
        } else if (d.sleep_ms >= c.quiet_ms) {
            d.quiet_probe = true;
        }
    }
    if (d.quiet_probe) d.quiet_from_ms = std::max(0.0, d.sleep_ms - c.quiet_measure_ms);
    quiet_asked_ = d.quiet_probe;
    prev_sleep_ = d.sleep_ms;
    return d;
}

}  // namespace safe_migrate::core
