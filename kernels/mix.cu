// Fused float mixing of the methods (gpuaug.executors.mix_kernels): one read of each
// uint8 input a kernel uses, registers for everything in between, one write.
//
// Every kernel: grid (blocks_per_sample, n_samples), blockIdx.y = sample; threads walk
// the sample's elements (pixel-channels) with a grid stride.  Float math reproduces the
// numpy twin in gpuaug.executors.mixops bit for bit: float32, one rounding per operation
// (the _rn intrinsics; NVRTC runs with --fmad=false), the same operation order.  The
// multiplicative mix takes its powers in float64 (pow), rounded once to float32.
//
//   gpuaug_weighted_mix   (1 - m) x/255 + m sum_j w_j chain_j/255     AugMix, NoisyMix, IPMix
//   gpuaug_pixmix_rounds  all PixMix rounds per element in registers
//   gpuaug_ipmix_patch    one IPMix patch step, in place, only the box's elements
//   gpuaug_dynamic_mix    m1 x1 + m2 x2 + m1 m2 (x1 - x2), clipped      Dynamic Mixup

#define MIX_ADD 0
#define MIX_MULTIPLY 1
#define MIX_RANDOM_PIXELS 2
#define MIX_RANDOM_ELEMS 3

static __device__ __forceinline__ float unit(unsigned char v)
{
    return __fdiv_rn((float)v, 255.0f);
}

// numpy's clip(v, 0, 1): NaN passes through, max then min.
static __device__ __forceinline__ float clip01(float v)
{
    if (v != v) return v;
    v = v > 0.0f ? v : 0.0f;
    return v < 1.0f ? v : 1.0f;
}

// PixMix additive: ((a (2u - 1) + b (2v - 1)) + 1) / 2
static __device__ __forceinline__ float mix_add(float u, float v, float a, float b)
{
    const float s = __fadd_rn(__fmul_rn(a, __fsub_rn(__fmul_rn(2.0f, u), 1.0f)),
                              __fmul_rn(b, __fsub_rn(__fmul_rn(2.0f, v), 1.0f)));
    return __fdiv_rn(__fadd_rn(s, 1.0f), 2.0f);
}

// PixMix multiplicative: float32((2u)^a * max(2v, 1e-37)^b in float64) / 2
static __device__ __forceinline__ float mix_mul(float u, float v, float a, float b)
{
    const float bu = __fmul_rn(2.0f, u);
    float bv = __fmul_rn(2.0f, v);
    bv = (bv >= 1e-37f || bv != bv) ? bv : 1e-37f;
    const double p = __dmul_rn(pow((double)bu, (double)a), pow((double)bv, (double)b));
    return __fdiv_rn((float)p, 2.0f);
}

// gpuaug.methods.ipmix.hash_uniform: a uint32 hash of (seed, index) -> [0, 1).
static __device__ __forceinline__ float hash_uniform(unsigned int seed, unsigned int index)
{
    unsigned int h = seed ^ (index * 0x9E3779B9u);
    h ^= h >> 16;
    h *= 0x7FEB352Du;
    h ^= h >> 16;
    h *= 0x846CA68Bu;
    h ^= h >> 15;
    return __fmul_rn((float)(h >> 8), 5.9604644775390625e-08f);  // 2^-24
}

// chains: k pointers to (N, H, W, 3) uint8 batches; weights (N, k); skip (N,).
extern "C" __global__ void gpuaug_weighted_mix(
    const unsigned char* __restrict__ images, const unsigned long long* __restrict__ chains, int k,
    const float* __restrict__ weights, const float* __restrict__ skip, long long n_elems,
    float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const float* w = weights + (long long)s * k;
    const float m = skip[s];
    const float one_m = __fsub_rn(1.0f, m);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_elems; e += stride) {
        float mix = 0.0f;
        for (int j = 0; j < k; ++j) {
            const unsigned char* c = (const unsigned char*)chains[j];
            mix = __fadd_rn(mix, __fmul_rn(w[j], unit(c[base + e])));
        }
        out[base + e] = __fadd_rn(__fmul_rn(one_m, unit(images[base + e])), __fmul_rn(m, mix));
    }
}

// augmented: k pointers (round j's augment(x)); flags (N, k): bit 0 partner is augment(x)
// (else the picture), bit 1 multiplicative (else additive); a, b (N, k); rounds (N,).
extern "C" __global__ void gpuaug_pixmix_rounds(
    const unsigned char* __restrict__ start, const unsigned char* __restrict__ picture,
    const unsigned long long* __restrict__ augmented, const int* __restrict__ rounds,
    const int* __restrict__ flags, const float* __restrict__ a, const float* __restrict__ b,
    int k, long long n_elems, float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const int r = rounds[s];
    const int* f = flags + (long long)s * k;
    const float* sa = a + (long long)s * k;
    const float* sb = b + (long long)s * k;
    bool uses_picture = false;
    for (int j = 0; j < r; ++j) uses_picture = uses_picture || !(f[j] & 1);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_elems; e += stride) {
        float mixed = unit(start[base + e]);
        const float pic = uses_picture ? unit(picture[base + e]) : 0.0f;
        for (int j = 0; j < r; ++j) {
            const float v = (f[j] & 1) ? unit(((const unsigned char*)augmented[j])[base + e]) : pic;
            const float res = (f[j] & 2) ? mix_mul(mixed, v, sa[j], sb[j]) : mix_add(mixed, v, sa[j], sb[j]);
            mixed = clip01(res);
        }
        out[base + e] = mixed;
    }
}

// One patch step, in place on chain: iparams (N, 6) top, left, box h, box w, mix op,
// partner is the picture (else augmented); fparams (N, 3) a, b, threshold; seeds (N,).
// Only the box's elements are touched; grid.x covers the largest box of the batch.
extern "C" __global__ void gpuaug_ipmix_patch(
    unsigned char* __restrict__ chain, const unsigned char* __restrict__ picture,
    const unsigned char* __restrict__ augmented, const int* __restrict__ iparams,
    const float* __restrict__ fparams, const unsigned int* __restrict__ seeds, int height, int width)
{
    const int s = blockIdx.y;
    const int* ip = iparams + (long long)s * 6;
    const int top = ip[0], left = ip[1], bh = ip[2], bw = ip[3], op = ip[4];
    const unsigned char* partner = ip[5] ? picture : augmented;
    const float fa = fparams[s * 3], fb = fparams[s * 3 + 1], thr = fparams[s * 3 + 2];
    const unsigned int seed = seeds[s];
    const long long base = (long long)s * height * width * 3;
    const long long n_box = (long long)bh * bw * 3;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_box; e += stride) {
        const int p = (int)(e / 3), c = (int)(e % 3);
        const int y = top + p / bw, x = left + p % bw;
        const unsigned int pixel = (unsigned int)y * (unsigned int)width + (unsigned int)x;
        const long long idx = base + 3ll * pixel + c;
        const float x1 = unit(chain[idx]), x2 = unit(partner[idx]);
        float mixed = x1;
        switch (op) {
        case MIX_ADD: mixed = mix_add(x1, x2, fa, fb); break;
        case MIX_MULTIPLY: mixed = mix_mul(x1, x2, fa, fb); break;
        case MIX_RANDOM_PIXELS: mixed = hash_uniform(seed, pixel) < thr ? x1 : x2; break;
        case MIX_RANDOM_ELEMS: mixed = hash_uniform(seed, pixel * 3u + (unsigned int)c) < thr ? x1 : x2; break;
        default: break;
        }
        chain[idx] = (unsigned char)(int)__fmul_rn(clip01(mixed), 255.0f);
    }
}

// m1 (N,): out = clip(m1 x1 + m2 x2 + m1 m2 (x1 - x2)), m2 = 1 - m1.
extern "C" __global__ void gpuaug_dynamic_mix(
    const unsigned char* __restrict__ x1, const unsigned char* __restrict__ x2,
    const float* __restrict__ m1, const float* __restrict__ m2, long long n_elems, float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const float a = m1[s];
    const float b = m2[s];
    const float ab = __fmul_rn(a, b);
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long e = (long long)blockIdx.x * blockDim.x + threadIdx.x; e < n_elems; e += stride) {
        const float u = unit(x1[base + e]), v = unit(x2[base + e]);
        const float t = __fadd_rn(__fadd_rn(__fmul_rn(a, u), __fmul_rn(b, v)), __fmul_rn(ab, __fsub_rn(u, v)));
        out[base + e] = clip01(t);
    }
}
