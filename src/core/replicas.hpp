/*
 * replicas.hpp — how far behind the replicas are, from the walsenders'
 * positions.
 *
 * A backfill waits while a replica is more than max_replica_lag bytes of WAL
 * behind.  A replica is a walsender that sends WAL: one that streams, and one
 * that catches up after it (re)connected.  The one that catches up is the
 * furthest behind of all: leaving it out let a job run unthrottled exactly
 * while a replica was catching up, which made its catch-up longer, and with
 * enough WAL written meanwhile the primary recycled segments the replica had
 * not received yet (without a slot it can then never catch up).
 *
 * Pure: it sees positions, never shared memory.
 */
#pragma once

#include <cstddef>
#include <cstdint>

namespace safe_migrate::core {

// What a walsender does: only one that catches up or streams serves a
// replica (one starting, serving a base backup or stopping does not).
enum class SenderState { Other, Catchup, Streaming };

struct SenderPosition {
    SenderState state;
    uint64_t sent;      // WAL sent up to here (0: not known)
    uint64_t applied;   // the replica reported it replayed up to here (0: no report yet)
};

// Bytes the sender's replica has still to replay, against `current` (the
// primary's WAL position): 0 when it is no replica or is not behind.  Its
// position is what it reported replayed; before its first report, what was
// sent to it (it cannot have replayed more); with neither, it is not
// measured yet (0).
int64_t replica_lag_bytes(const SenderPosition &sender, uint64_t current);

}  // namespace safe_migrate::core
