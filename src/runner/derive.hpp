/*
 * derive.hpp — down scripts derived from parse trees (see derive.cpp).
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace safe_migrate::runner {

/* The reverse of the up script, newest statement first, or NULL with the
 * reason when some statement has no certain reverse. */
char *derive_down_script(const char *up, const char **reason);

}  // namespace safe_migrate::runner
