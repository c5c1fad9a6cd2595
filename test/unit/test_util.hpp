#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "core/error.hpp"

// Expects `fn` to throw safe_migrate::core::ScriptError whose message contains `needle`.
inline ::testing::AssertionResult ThrowsScriptError(const std::function<void()>& fn, const std::string& needle) {
    try {
        fn();
    } catch (const safe_migrate::core::ScriptError& e) {
        const std::string what = e.what();
        if (what.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "message \"" << what << "\" does not contain \"" << needle << "\"";
    } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "threw another exception: " << e.what();
    }
    return ::testing::AssertionFailure() << "did not throw";
}
