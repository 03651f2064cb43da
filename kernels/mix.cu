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

// ---- 4 elements per thread: one 4-byte load per uint8 input, one 16-byte store.
// A kernel takes the vector path when every pointer it uses is aligned and n_elems is a
// multiple of 4 (so every sample's start is aligned too); the per-element math is the
// scalar path's, so both give the same bits.
struct alignas(4) u8x4 { unsigned char v[4]; };
struct alignas(16) f32x4 { float v[4]; };

static __device__ __forceinline__ u8x4 load4(const unsigned char* p)
{
#ifdef __CUDACC_RTC__
    return *reinterpret_cast<const u8x4*>(p);
#else
    u8x4 r;
    memcpy(&r, p, sizeof r);
    return r;
#endif
}

static __device__ __forceinline__ void store4(float* p, const f32x4& v)
{
#ifdef __CUDACC_RTC__
    *reinterpret_cast<f32x4*>(p) = v;
#else
    memcpy(p, &v, sizeof v);
#endif
}

static __device__ __forceinline__ bool aligned(const void* p, unsigned long long bytes)
{
    return ((unsigned long long)p & (bytes - 1)) == 0;
}

// Chain j's byte at element e of sample s: rows[s k + j] + e, read through the (3, 256)
// LUT at luts[s k + j] when that is non-zero (the chain's last step, a LUT op, fused).
static __device__ __forceinline__ unsigned char chain_byte(
    const unsigned long long* rows, const unsigned long long* luts, long long sk, long long e)
{
    const unsigned char v = ((const unsigned char*)rows[sk])[e];
    const unsigned char* lut = (const unsigned char*)luts[sk];
    return lut ? lut[(int)(e % 3) * 256 + v] : v;
}

// chain_byte for the 4 elements from e (the row's address aligned to 4 bytes).
static __device__ __forceinline__ u8x4 chain_load4(
    const unsigned long long* rows, const unsigned long long* luts, long long sk, long long e)
{
    u8x4 c = load4((const unsigned char*)rows[sk] + e);
    const unsigned char* lut = (const unsigned char*)luts[sk];
    if (lut) {
        const int ch = (int)(e % 3);
        for (int l = 0; l < 4; ++l) c.v[l] = lut[((ch + l) % 3) * 256 + c.v[l]];
    }
    return c;
}

// rows, luts: N x k addresses (row s k + j: chain j of sample s, see chain_byte);
// weights (N, k); skip (N,).
extern "C" __global__ void gpuaug_weighted_mix(
    const unsigned char* __restrict__ images, const unsigned long long* __restrict__ rows,
    const unsigned long long* __restrict__ luts, int k,
    const float* __restrict__ weights, const float* __restrict__ skip, long long n_elems,
    float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const long long sk = (long long)s * k;
    const float* w = weights + sk;
    const float m = skip[s];
    const float one_m = __fsub_rn(1.0f, m);
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long t0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    bool vec = n_elems % 4 == 0 && aligned(images, 4) && aligned(out, 16);
    for (int j = 0; j < k; ++j) vec = vec && aligned((const void*)rows[sk + j], 4);
    const long long n_vec = vec ? n_elems / 4 : 0;
    for (long long q = t0; q < n_vec; q += stride) {
        const long long e = 4 * q;
        const u8x4 x = load4(images + base + e);
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (int j = 0; j < k; ++j) {
            const u8x4 c = chain_load4(rows, luts, sk + j, e);
            for (int l = 0; l < 4; ++l) acc[l] = __fadd_rn(acc[l], __fmul_rn(w[j], unit(c.v[l])));
        }
        f32x4 o;
        for (int l = 0; l < 4; ++l) o.v[l] = __fadd_rn(__fmul_rn(one_m, unit(x.v[l])), __fmul_rn(m, acc[l]));
        store4(out + base + e, o);
    }
    for (long long e = 4 * n_vec + t0; e < n_elems; e += stride) {
        float mix = 0.0f;
        for (int j = 0; j < k; ++j) mix = __fadd_rn(mix, __fmul_rn(w[j], unit(chain_byte(rows, luts, sk + j, e))));
        out[base + e] = __fadd_rn(__fmul_rn(one_m, unit(images[base + e])), __fmul_rn(m, mix));
    }
}

// rows, luts: N x (k + 1) addresses (see chain_byte): slot 0 the start image, slot j + 1
// round j's augment(x); flags (N, k): bit 0 partner is augment(x) (else the picture),
// bit 1 multiplicative (else additive); a, b (N, k); rounds (N,).
extern "C" __global__ void gpuaug_pixmix_rounds(
    const unsigned long long* __restrict__ rows, const unsigned long long* __restrict__ luts,
    const unsigned char* __restrict__ picture, const int* __restrict__ rounds,
    const int* __restrict__ flags, const float* __restrict__ a, const float* __restrict__ b,
    int k, long long n_elems, float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const long long sk = (long long)s * (k + 1);
    const int r = rounds[s];
    const int* f = flags + (long long)s * k;
    const float* sa = a + (long long)s * k;
    const float* sb = b + (long long)s * k;
    bool uses_picture = false;
    for (int j = 0; j < r; ++j) uses_picture = uses_picture || !(f[j] & 1);
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long t0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    bool vec = n_elems % 4 == 0 && aligned((const void*)rows[sk], 4) && aligned(out, 16)
               && (!uses_picture || aligned(picture, 4));
    for (int j = 0; j < r; ++j) vec = vec && (!(f[j] & 1) || aligned((const void*)rows[sk + 1 + j], 4));
    const long long n_vec = vec ? n_elems / 4 : 0;
    for (long long q = t0; q < n_vec; q += stride) {
        const long long e = 4 * q;
        const u8x4 x = chain_load4(rows, luts, sk, e);
        u8x4 pic4 = {{0, 0, 0, 0}};
        if (uses_picture) pic4 = load4(picture + base + e);
        float mixed[4];
        for (int l = 0; l < 4; ++l) mixed[l] = unit(x.v[l]);
        for (int j = 0; j < r; ++j) {
            const bool is_aug = f[j] & 1;
            const u8x4 a4 = is_aug ? chain_load4(rows, luts, sk + 1 + j, e) : pic4;
            for (int l = 0; l < 4; ++l) {
                const float v = (is_aug || uses_picture) ? unit(a4.v[l]) : 0.0f;
                const float res = (f[j] & 2) ? mix_mul(mixed[l], v, sa[j], sb[j]) : mix_add(mixed[l], v, sa[j], sb[j]);
                mixed[l] = clip01(res);
            }
        }
        f32x4 o;
        for (int l = 0; l < 4; ++l) o.v[l] = mixed[l];
        store4(out + base + e, o);
    }
    for (long long e = 4 * n_vec + t0; e < n_elems; e += stride) {
        float mixed = unit(chain_byte(rows, luts, sk, e));
        const float pic = uses_picture ? unit(picture[base + e]) : 0.0f;
        for (int j = 0; j < r; ++j) {
            const float v = (f[j] & 1) ? unit(chain_byte(rows, luts, sk + 1 + j, e)) : pic;
            const float res = (f[j] & 2) ? mix_mul(mixed, v, sa[j], sb[j]) : mix_add(mixed, v, sa[j], sb[j]);
            mixed = clip01(res);
        }
        out[base + e] = mixed;
    }
}

// One patch step, in place on chain (rows of N x H x W x 3 uint8): iparams (N, 6) top,
// left, box h, box w, mix op, (unused); partners (N,): the address of row s's partner
// image (its mixing picture or its augmented image, chosen on the host, so one launch
// can serve the rows of several chains); fparams (N, 3) a, b, threshold; seeds (N,).
// Only the box's elements are touched; grid.x covers the largest box of the batch.
extern "C" __global__ void gpuaug_ipmix_patch(
    unsigned char* __restrict__ chain, const unsigned long long* __restrict__ partners,
    const int* __restrict__ iparams, const float* __restrict__ fparams,
    const unsigned int* __restrict__ seeds, int height, int width)
{
    const int s = blockIdx.y;
    const int* ip = iparams + (long long)s * 6;
    const int top = ip[0], left = ip[1], bh = ip[2], bw = ip[3], op = ip[4];
    if (bh <= 0 || bw <= 0) return;  // no box: the partner may not even exist
    const unsigned char* partner = (const unsigned char*)partners[s];
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
        const float x1 = unit(chain[idx]), x2 = unit(partner[idx - base]);
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

static __device__ __forceinline__ float dynamic_elem(float u, float v, float a, float b, float ab)
{
    return clip01(__fadd_rn(__fadd_rn(__fmul_rn(a, u), __fmul_rn(b, v)), __fmul_rn(ab, __fsub_rn(u, v))));
}

// rows, luts: N x 2 addresses of x1 and x2 per sample (see chain_byte); m1, m2 (N,):
// out = clip(m1 x1 + m2 x2 + m1 m2 (x1 - x2)).
extern "C" __global__ void gpuaug_dynamic_mix(
    const unsigned long long* __restrict__ rows, const unsigned long long* __restrict__ luts,
    const float* __restrict__ m1, const float* __restrict__ m2, long long n_elems, float* __restrict__ out)
{
    const int s = blockIdx.y;
    const long long base = (long long)s * n_elems;
    const long long sk = 2LL * s;
    const float a = m1[s];
    const float b = m2[s];
    const float ab = __fmul_rn(a, b);
    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long t0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    const bool vec = n_elems % 4 == 0 && aligned((const void*)rows[sk], 4) && aligned((const void*)rows[sk + 1], 4)
                     && aligned(out, 16);
    const long long n_vec = vec ? n_elems / 4 : 0;
    for (long long q = t0; q < n_vec; q += stride) {
        const long long e = 4 * q;
        const u8x4 p = chain_load4(rows, luts, sk, e), r = chain_load4(rows, luts, sk + 1, e);
        f32x4 o;
        for (int l = 0; l < 4; ++l) o.v[l] = dynamic_elem(unit(p.v[l]), unit(r.v[l]), a, b, ab);
        store4(out + base + e, o);
    }
    for (long long e = 4 * n_vec + t0; e < n_elems; e += stride) {
        out[base + e] = dynamic_elem(unit(chain_byte(rows, luts, sk, e)), unit(chain_byte(rows, luts, sk + 1, e)),
                                     a, b, ab);
    }
}
