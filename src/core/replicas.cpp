#include "replicas.hpp"

namespace safe_migrate::core {

int64_t worst_replica_lag(const SenderPosition *senders, size_t n, uint64_t current)
{
    int64_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        const SenderPosition &s = senders[i];
        if (!s.active || (s.state != SenderState::Catchup && s.state != SenderState::Streaming))
            continue;
        uint64_t at = s.applied != 0 ? s.applied : s.sent;
        if (at == 0 || at >= current)
            continue;
        uint64_t behind = current - at;
        if (behind > (uint64_t) INT64_MAX)
            behind = (uint64_t) INT64_MAX;
        if ((int64_t) behind > worst)
            worst = (int64_t) behind;
    }
    return worst;
}

}  // namespace safe_migrate::core
