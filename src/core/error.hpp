#pragma once

#include <stdexcept>
#include <string>

namespace safe_migrate::core {

// Thrown by the core library for invalid input (bad migration scripts,
// forbidden statement sequences, malformed versions, ...). The message is
// meant to be shown to the user as is.
class ScriptError : public std::runtime_error {
public:
    explicit ScriptError(const std::string& message) : std::runtime_error(message) {}
    explicit ScriptError(const char* message) : std::runtime_error(message) {}
};

}  // namespace safe_migrate::core
