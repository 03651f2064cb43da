// cuda_emu.h - run gpuaug's CUDA C kernels on the CPU (the "emulated" backend of
// gpuaug.executors.launch).  Included by g++ (C++20) before a kernels/*.cu file; not
// used by NVRTC.
//
// Model: one launch runs the grid's blocks one after another.  A block's blockDim
// threads are real std::threads (created once per launch and reused for every block),
// so __syncthreads is a std::barrier over them and __shared__ variables are plain
// static storage (one block is alive at a time).  threadIdx, blockIdx, blockDim and
// gridDim are thread_local.  Float intrinsics are plain IEEE operations (compile with
// -ffp-contract=off so nothing is fused).  Warp-level intrinsics are not emulated.
#pragma once

#include <atomic>
#include <barrier>
#include <cmath>
#include <cstring>
#include <exception>
#include <latch>
#include <math.h>
#include <string>
#include <thread>
#include <vector>

struct uint3 { unsigned int x, y, z; };
struct dim3 { unsigned int x, y, z; };

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ static
#define __launch_bounds__(...)

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim{1, 1, 1};
inline thread_local dim3 gridDim{1, 1, 1};
constexpr int warpSize = 32;

namespace gpuaug_emu {

inline thread_local std::barrier<>* block_barrier = nullptr;
inline thread_local std::string last_error;

inline void syncthreads() { block_barrier->arrive_and_wait(); }

// Run body() as every thread of every block of the grid; 0 on success, else 1 with
// last_error set (the caller's thread reads it).
template <class Body>
int launch(dim3 grid, dim3 block, Body body) noexcept
{
    try {
        const unsigned int n = block.x * block.y * block.z;
        std::barrier<> bar(n);
        std::latch start(1);
        std::atomic<bool> abort{false};
        std::vector<std::thread> threads;
        threads.reserve(n);
        auto worker = [&](unsigned int t) {
            threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
            blockDim = block;
            gridDim = grid;
            block_barrier = &bar;
            start.wait();
            if (abort.load()) return;
            for (unsigned int z = 0; z < grid.z; ++z)
                for (unsigned int y = 0; y < grid.y; ++y)
                    for (unsigned int x = 0; x < grid.x; ++x) {
                        blockIdx = {x, y, z};
                        body();
                        bar.arrive_and_wait();  // the block ends before the next begins
                    }
        };
        try {
            for (unsigned int t = 0; t < n; ++t) threads.emplace_back(worker, t);
        } catch (...) {
            abort.store(true);
            start.count_down();
            for (auto& th : threads) th.join();
            throw;
        }
        start.count_down();
        for (auto& th : threads) th.join();
        return 0;
    } catch (const std::exception& e) {
        last_error = e.what();
    } catch (...) {
        last_error = "unknown C++ exception";
    }
    return 1;
}

}  // namespace gpuaug_emu

#define __syncthreads() ::gpuaug_emu::syncthreads()

// ---------------------------------------------------------------- atomics
template <class T, class U> inline T atomicAdd(T* p, U v) { return std::atomic_ref<T>(*p).fetch_add(static_cast<T>(v)); }
template <class T, class U> inline T atomicSub(T* p, U v) { return std::atomic_ref<T>(*p).fetch_sub(static_cast<T>(v)); }
template <class T, class U> inline T atomicExch(T* p, U v) { return std::atomic_ref<T>(*p).exchange(static_cast<T>(v)); }
template <class T, class U> inline T atomicOr(T* p, U v) { return std::atomic_ref<T>(*p).fetch_or(static_cast<T>(v)); }
template <class T, class U> inline T atomicAnd(T* p, U v) { return std::atomic_ref<T>(*p).fetch_and(static_cast<T>(v)); }
template <class T, class U> inline T atomicMax(T* p, U v)
{
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (old < static_cast<T>(v) && !r.compare_exchange_weak(old, static_cast<T>(v))) {}
    return old;
}
template <class T, class U> inline T atomicMin(T* p, U v)
{
    std::atomic_ref<T> r(*p);
    T old = r.load();
    while (old > static_cast<T>(v) && !r.compare_exchange_weak(old, static_cast<T>(v))) {}
    return old;
}
template <class T, class U, class V> inline T atomicCAS(T* p, U compare, V v)
{
    T expected = static_cast<T>(compare);
    std::atomic_ref<T>(*p).compare_exchange_strong(expected, static_cast<T>(v));
    return expected;
}

// ---------------------------------------------------------------- arithmetic intrinsics
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __dsqrt_rn(double a) { return std::sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __saturatef(float a) { return a < 0.0f ? 0.0f : (a > 1.0f ? 1.0f : a); }

inline int __float2int_rz(float a) { return static_cast<int>(a); }
inline int __float2int_rd(float a) { return static_cast<int>(std::floor(a)); }
inline int __float2int_ru(float a) { return static_cast<int>(std::ceil(a)); }
inline int __float2int_rn(float a) { return static_cast<int>(std::nearbyint(a)); }
inline unsigned int __float2uint_rz(float a) { return static_cast<unsigned int>(a); }
inline unsigned int __float2uint_rn(float a) { return static_cast<unsigned int>(std::nearbyint(a)); }
inline int __double2int_rz(double a) { return static_cast<int>(a); }
inline int __double2int_rd(double a) { return static_cast<int>(std::floor(a)); }
inline int __double2int_rn(double a) { return static_cast<int>(std::nearbyint(a)); }
inline float __double2float_rn(double a) { return static_cast<float>(a); }
inline float __int2float_rn(int a) { return static_cast<float>(a); }
inline float __uint2float_rn(unsigned int a) { return static_cast<float>(a); }
inline double __int2double_rn(int a) { return static_cast<double>(a); }

inline int __popc(unsigned int a) { return __builtin_popcount(a); }
inline int __popcll(unsigned long long a) { return __builtin_popcountll(a); }
inline int __clz(int a) { return a == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(a)); }
inline unsigned int __umulhi(unsigned int a, unsigned int b)
{
    return static_cast<unsigned int>((static_cast<unsigned long long>(a) * b) >> 32);
}
template <class T> inline T __ldg(const T* p) { return *p; }

// CUDA's min/max overloads for matching argument types.
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }
