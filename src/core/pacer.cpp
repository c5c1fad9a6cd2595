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
    finite_at_least("busy_batch_ms", c.busy_batch_ms, 0, true);
    finite_at_least("idle_after_ms", c.idle_after_ms, 0, false);
    finite_at_least("min_foreground_rate", c.min_foreground_rate, 0, false);
    fraction("min_duty", c.min_duty, true);
    fraction("initial_duty", c.initial_duty, true);
    if (c.initial_duty < c.min_duty)
        bad("initial_duty (" + num(c.initial_duty) + ") must not be below min_duty (" + num(c.min_duty) + ")");
    finite_at_least("duty_increase_per_s", c.duty_increase_per_s, 0, true);
    fraction("duty_cut", c.duty_cut, false);
    finite_at_least("cut_interval_ms", c.cut_interval_ms, 0, false);
    finite_at_least("spike_factor", c.spike_factor, 1, false);
    fraction("probe_alpha", c.probe_alpha, true);
    fraction("baseline_alpha", c.baseline_alpha, true);
    finite_at_least("quiet_ms", c.quiet_ms, 0, false);
    finite_at_least("baseline_interval_ms", c.baseline_interval_ms, 0, false);
    finite_at_least("probe_interval_ms", c.probe_interval_ms, 0, false);
    finite_at_least("busy_probe_interval_ms", c.busy_probe_interval_ms, 0, false);
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
double Pacer::probe_ms() const { return probe_; }
double Pacer::baseline_ms() const { return baseline_; }
double Pacer::excess_ms() const { return probe_ >= 0 && baseline_ >= 0 ? probe_ - baseline_ : 0; }
HeldBy Pacer::held_by() const { return held_; }
double Pacer::elapsed_ms() const { return now_; }
const PacerConfig& Pacer::config() const { return cfg_; }

PaceDecision Pacer::after_batch(const PaceObservation& obs) {
    const PacerConfig& c = cfg_;
    const bool duration_known = std::isfinite(obs.duration_ms) && obs.duration_ms >= 0;
    const double duration = duration_known ? obs.duration_ms : 0.0;
    const double step = duration + prev_sleep_;
    now_ += step;

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
            duty_ = std::min(duty_, c.initial_duty);
        }
    } else if (now_ - last_foreground_ >= c.idle_after_ms) {
        present_ = false;
    }

    // The baseline: quiet probes only.
    const bool have_quiet = quiet_asked_ && std::isfinite(obs.quiet_probe_ms) && obs.quiet_probe_ms >= 0;
    if (have_quiet) {
        const double q = obs.quiet_probe_ms;
        baseline_ = baseline_ < 0 ? q : (1 - c.baseline_alpha) * baseline_ + c.baseline_alpha * q;
        last_quiet_at_ = now_;
    }
    quiet_asked_ = false;
    // The probe after the batch: smoothed.
    bool spike = false;
    const bool have_probe = std::isfinite(obs.probe_ms) && obs.probe_ms >= 0;
    if (have_probe) {
        const double p = obs.probe_ms;
        last_probe_at_ = now_;
        probe_ = probe_ < 0 ? p : (1 - c.probe_alpha) * probe_ + c.probe_alpha * p;
        spike = c.latency_budget_ms > 0 && baseline_ >= 0 && p > baseline_ + c.spike_factor * c.latency_budget_ms;
    }

    // The duty cycle.
    const bool control = c.latency_budget_ms > 0;
    HeldBy cut_by = HeldBy::Nothing;
    if (obs.lock_waiters > 0)
        cut_by = HeldBy::LockWaiters;
    else if (control && present_ && (spike || excess_ms() > c.latency_budget_ms))
        cut_by = HeldBy::ForegroundLatency;
    if (!present_ && cut_by != HeldBy::LockWaiters) {
        duty_ = 1;  // nobody is there: full speed
        reason_ = HeldBy::Nothing;
    } else if (cut_by != HeldBy::Nothing) {
        if (now_ - last_cut_ >= c.cut_interval_ms) {
            duty_ = std::max(c.min_duty, duty_ * c.duty_cut);
            last_cut_ = now_;
        }
        reason_ = cut_by;
    } else if (!control) {
        duty_ = 1;
        reason_ = HeldBy::Nothing;
    } else if (!arrived && excess_ms() <= c.latency_budget_ms) {
        duty_ = std::min(1.0, duty_ + c.duty_increase_per_s * step / 1000.0);
        if (duty_ >= 1) reason_ = HeldBy::Nothing;
    }

    // Batch size: the Throttle, aiming at short batches while the
    // application is there.
    const double target = present_ && control ? std::min(full_target_ms_, c.busy_batch_ms) : full_target_ms_;
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

    // A quiet probe: when the application arrives, when the baseline is
    // old, or for free when the sleep is long enough anyway.
    if (present_ && control) {
        const bool stale = now_ - last_quiet_at_ >= c.baseline_interval_ms;
        if (arrived || stale || baseline_ < 0) {
            d.sleep_ms = std::max(d.sleep_ms, c.quiet_ms);
            d.quiet_probe = true;
        } else if (d.sleep_ms >= c.quiet_ms) {
            d.quiet_probe = true;
        }
    }
    quiet_asked_ = d.quiet_probe;
    prev_sleep_ = d.sleep_ms;
    // the next batch ends at least its sleep from now
    d.probe_next = now_ + d.sleep_ms - last_probe_at_ >=
                   (present_ ? c.busy_probe_interval_ms : c.probe_interval_ms);
    return d;
}

}  // namespace safe_migrate::core
