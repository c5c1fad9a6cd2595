#include "replicas.hpp"

namespace safe_migrate::core {

int64_t replica_lag_bytes(const SenderPosition &sender, uint64_t current)
{
    if (sender.state != SenderState::Catchup && sender.state != SenderState::Streaming)
        return 0;
    uint64_t at = sender.applied != 0 ? sender.applied : sender.sent;
    if (at == 0 || at >= current)
        return 0;
    uint64_t behind = current - at;
    return behind > (uint64_t) INT64_MAX ? INT64_MAX : (int64_t) behind;
}

}  // namespace safe_migrate::core
