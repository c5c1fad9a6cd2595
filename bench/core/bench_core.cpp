#include <benchmark/benchmark.h>

#include <cstddef>
#include <string>
#include <vector>

#include "core/script.hpp"
#include "core/segments.hpp"
#include "core/sha256.hpp"

namespace sm = safe_migrate::core;

namespace {

void BM_Sha256(benchmark::State& state) {
    const std::string data(static_cast<std::size_t>(state.range(0)), 'x');
    for (auto _ : state) {
        benchmark::DoNotOptimize(sm::sha256_hex(data));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Sha256)->Arg(1024)->Arg(1024 * 1024);

std::string make_dbmate_script(int statements) {
    std::string s = "-- add things\n-- safe_migrate:allow add-column-default small table\n-- migrate:up\n";
    for (int i = 0; i < statements; ++i) {
        s += "ALTER TABLE t ADD COLUMN c" + std::to_string(i) + " integer DEFAULT " + std::to_string(i) + ";\n";
    }
    s += "-- migrate:down\n";
    for (int i = 0; i < statements; ++i) s += "ALTER TABLE t DROP COLUMN c" + std::to_string(i) + ";\n";
    return s;
}

void BM_SplitSections(benchmark::State& state) {
    const std::string script = make_dbmate_script(100);
    for (auto _ : state) {
        benchmark::DoNotOptimize(sm::split_sections(script));
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                            static_cast<std::int64_t>(script.size()));
}
BENCHMARK(BM_SplitSections);

void BM_ScriptChecksum(benchmark::State& state) {
    const std::string script = make_dbmate_script(100);
    for (auto _ : state) {
        benchmark::DoNotOptimize(sm::script_checksum(script));
    }
}
BENCHMARK(BM_ScriptChecksum);

void BM_PlanSegments(benchmark::State& state) {
    std::vector<sm::TxClass> stmts;
    stmts.reserve(1000);
    for (int i = 0; i < 1000; ++i) {
        stmts.push_back(i % 50 == 49   ? sm::TxClass::NonTransactional
                        : i % 97 == 0 ? sm::TxClass::OwnTransaction
                                      : sm::TxClass::Transactional);
    }
    for (auto _ : state) {
        benchmark::DoNotOptimize(sm::plan_segments(stmts));
    }
}
BENCHMARK(BM_PlanSegments);

}  // namespace

BENCHMARK_MAIN();
