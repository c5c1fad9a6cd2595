/*
 * errcodes.hpp — safe_migrate's own SQLSTATEs (class "SM", outside the
 * standard's classes as implementation-defined codes should be).
 */
#pragma once

extern "C" {
#include "postgres.h"
}

/* an applied version was given a different script */
#define ERRCODE_SM_CHECKSUM_MISMATCH MAKE_SQLSTATE('S', 'M', '0', '0', '1')
/* a statement was blocked by the safe-DDL policy */
#define ERRCODE_SM_POLICY_VIOLATION MAKE_SQLSTATE('S', 'M', '0', '0', '2')
