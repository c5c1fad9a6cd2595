#pragma once

#include <string>
#include <string_view>

namespace safe_migrate::core {

// SHA-256 (FIPS 180-4) of `data`, as 64 lowercase hexadecimal characters.
std::string sha256_hex(std::string_view data);

}  // namespace safe_migrate::core
