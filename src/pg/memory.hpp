/*
 * memory.hpp — a std::pmr::memory_resource backed by a PostgreSQL
 * MemoryContext, so C++ containers used inside the backend allocate from a
 * context that PostgreSQL frees on transaction abort.  Allocation never
 * ereports: it asks for MCXT_ALLOC_NO_OOM and throws std::bad_alloc, which
 * the boundary (guard.hpp) turns into ERRCODE_OUT_OF_MEMORY.
 */
#pragma once

#include "guard.hpp"

#include <memory_resource>

namespace safe_migrate::pg {

class ContextResource final : public std::pmr::memory_resource {
  public:
    explicit ContextResource(MemoryContext cxt) noexcept : cxt_(cxt) {}
    MemoryContext context() const noexcept { return cxt_; }

  private:
    void *do_allocate(size_t bytes, size_t alignment) override
    {
        if (alignment > MAXIMUM_ALIGNOF)
            throw std::bad_alloc();
        void *p = MemoryContextAllocExtended(cxt_, bytes == 0 ? 1 : bytes, MCXT_ALLOC_NO_OOM);
        if (p == nullptr)
            throw std::bad_alloc();
        return p;
    }
    void do_deallocate(void *p, size_t, size_t) override { pfree(p); }
    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override
    {
        auto *o = dynamic_cast<const ContextResource *>(&other);
        return o != nullptr && o->cxt_ == cxt_;
    }

    MemoryContext cxt_;
};

}  // namespace safe_migrate::pg
