/*
 * snapshot.hpp — may a function that waits give up its caller's xmin?
 *
 * A session that waits (for another migration, for a backfill) inside a
 * statement keeps that statement's snapshot, and with it an xmin: concurrent
 * index builds wait for it, and no row version that dies meanwhile (all those
 * a backfill replaces) can be vacuumed.
 * When nothing will read with the caller's snapshot again, the waiting
 * function may withdraw the xmin (as CREATE INDEX CONCURRENTLY does between
 * its phases).
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace safe_migrate::pg {

/*
 * True when the active portal is a top-level SELECT, outside any
 * subtransaction, whose snapshot is the active one, and whose whole work is
 * this very call: "SELECT fn(args)" or "SELECT * FROM fn(args)", the call
 * being the portal's own plan node (not the same function called from
 * within another function, whose query may read with the snapshot after we
 * return).  Subqueries in the arguments (fn((SELECT max(id) FROM t))) are
 * allowed: they have run before fn is called.
 */
bool caller_snapshot_is_disposable(FunctionCallInfo fcinfo);

/* Withdraw this backend's xmin (the snapshot must be disposable, see above).
 * Taking a snapshot later sets it again; call this again after that. */
void withdraw_xmin(void);

}  // namespace safe_migrate::pg
