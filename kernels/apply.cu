// The per-pixel apply kernel of the image-level ops (gpuaug.executors.cuda).
//
// gpuaug_apply: grid (blocks_per_sample, n_samples); blockIdx.y picks a listed sample s,
// so the switch on its op id is uniform over a block; s reads the image at src_ptrs[s]
// (per-sample sources: the chains of a batch in one launch, each sample read from the
// input batch or from its chain's previous step) and writes sample s of dst.  Each
// thread walks pixels with a grid stride.  Ops and their exact semantics are those of cpu.py / OPS.md:
//   LUT ops    out = luts[s, c, in]                       (identity, autocontrast,
//                                                          equalize, posterize,
//                                                          solarize, invert)
//   blend ops  out = blend(D, in, f), float32, truncating (color, contrast,
//                                                          brightness, sharpness)
//   affine     bilinear sampling with float64 a0..a5      (rotate, shear, translate)
//   mirror / flip
// Images are dense NHWC uint8 of height x width; coeffs is (n_listed, 6) float64 (row j:
// listed sample j), luts is (N, 3, 256) uint8, lum_sum is (n_hist,) uint64, sample s's at
// hist_slot[s] (contrast only).

#define OP_ROTATE 5
#define OP_SHEAR_X 6
#define OP_SHEAR_Y 7
#define OP_TRANSLATE_X 8
#define OP_TRANSLATE_Y 9
#define OP_COLOR 10
#define OP_CONTRAST 11
#define OP_BRIGHTNESS 12
#define OP_SHARPNESS 13
#define OP_MIRROR 14
#define OP_FLIP 15

// Pillow's blend: t = D + a * (I - D), each operation rounded to float32; truncate and clip.
static __device__ __forceinline__ unsigned char blend_px(float d, float i, float a)
{
    const float t = __fadd_rn(d, __fmul_rn(a, __fsub_rn(i, d)));
    if (t <= 0.0f) return 0;
    if (t >= 255.0f) return 255;
    return (unsigned char)(int)t;
}

// Pillow's RGB -> L.
static __device__ __forceinline__ int grey(const unsigned char* px)
{
    return (19595 * px[0] + 38470 * px[1] + 7471 * px[2] + 32768) >> 16;
}

static __device__ __forceinline__ int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

// One output pixel of Pillow's AFFINE/BILINEAR transform (float64, no FMA).
static __device__ void affine_px(const unsigned char* img, int height, int width,
                                 const double* a, int x, int y, unsigned char* out)
{
    const double X = __dadd_rn((double)x, 0.5), Y = __dadd_rn((double)y, 0.5);
    const double sx = __dadd_rn(__dadd_rn(__dmul_rn(a[0], X), __dmul_rn(a[1], Y)), a[2]);
    const double sy = __dadd_rn(__dadd_rn(__dmul_rn(a[3], X), __dmul_rn(a[4], Y)), a[5]);
    if (!(sx >= 0.0 && sx < (double)width && sy >= 0.0 && sy < (double)height)) {
        out[0] = out[1] = out[2] = 0;
        return;
    }
    const double u = __dsub_rn(sx, 0.5), v = __dsub_rn(sy, 0.5);
    const double fu = floor(u), fv = floor(v);
    const double fx = __dsub_rn(u, fu), fy = __dsub_rn(v, fv);
    const int x0 = clamp_int((int)fu, 0, width - 1), x1 = clamp_int((int)fu + 1, 0, width - 1);
    const int y0 = clamp_int((int)fv, 0, height - 1), y1 = clamp_int((int)fv + 1, 0, height - 1);
    const unsigned char* r0 = img + (long long)y0 * width * 3;
    const unsigned char* r1 = img + (long long)y1 * width * 3;
    for (int c = 0; c < 3; ++c) {
        const double p00 = r0[3 * x0 + c], p01 = r0[3 * x1 + c];
        const double p10 = r1[3 * x0 + c], p11 = r1[3 * x1 + c];
        const double top = __dadd_rn(p00, __dmul_rn(__dsub_rn(p01, p00), fx));
        const double bottom = __dadd_rn(p10, __dmul_rn(__dsub_rn(p11, p10), fx));
        const double val = __dadd_rn(top, __dmul_rn(__dsub_rn(bottom, top), fy));
        out[c] = (unsigned char)(int)val;  // val is in [0, 255]: truncation
    }
}

// Pillow's ImageFilter.SMOOTH at an interior pixel, channel c: (2 S + 13) // 26.
static __device__ __forceinline__ int smooth_px(const unsigned char* px, int row, int c)
{
    int s = 4 * px[c];
    for (int dy = -1; dy <= 1; ++dy)
        for (int dx = -1; dx <= 1; ++dx) s += px[dy * row + 3 * dx + c];
    return (2 * s + 13) / 26;
}

// The pointwise ops (LUT ops, color, contrast, brightness) of one pixel.
static __device__ __forceinline__ void pointwise_px(int op, const unsigned char* in, unsigned char* o,
                                                    const unsigned char* lut, float f, int mean)
{
    switch (op) {
    case OP_COLOR: {
        const float d = (float)grey(in);
        for (int c = 0; c < 3; ++c) o[c] = blend_px(d, (float)in[c], f);
        break;
    }
    case OP_CONTRAST:
        for (int c = 0; c < 3; ++c) o[c] = blend_px((float)mean, (float)in[c], f);
        break;
    case OP_BRIGHTNESS:
        for (int c = 0; c < 3; ++c) o[c] = blend_px(0.0f, (float)in[c], f);
        break;
    default:  // LUT ops
        o[0] = lut[in[0]];
        o[1] = lut[256 + in[1]];
        o[2] = lut[512 + in[2]];
        break;
    }
}

static __device__ __forceinline__ bool is_pointwise(int op)
{
    return !(op == OP_ROTATE || op == OP_SHEAR_X || op == OP_SHEAR_Y || op == OP_TRANSLATE_X ||
             op == OP_TRANSLATE_Y || op == OP_SHARPNESS || op == OP_MIRROR || op == OP_FLIP);
}

// 4 pixels (12 bytes) as three aligned 4-byte words.
struct alignas(4) px4_word { unsigned char v[4]; };

static __device__ __forceinline__ void copy12(unsigned char* dst, const unsigned char* src)
{
#ifdef __CUDACC_RTC__
    const px4_word* s = reinterpret_cast<const px4_word*>(src);
    px4_word* d = reinterpret_cast<px4_word*>(dst);
    d[0] = s[0]; d[1] = s[1]; d[2] = s[2];
#else
    memcpy(dst, src, 12);
#endif
}

extern "C" __global__ void gpuaug_apply(
    const unsigned long long* __restrict__ src_ptrs, unsigned char* __restrict__ dst,
    const int* __restrict__ samples, const int* __restrict__ ids,
    const double* __restrict__ values, const double* __restrict__ coeffs,
    const unsigned char* __restrict__ luts, const unsigned long long* __restrict__ lum_sum,
    const int* __restrict__ hist_slot, int height, int width)
{
    const int s = samples[blockIdx.y];
    const int op = ids[s];
    const long long n_pixels = (long long)height * width;
    const unsigned char* img = (const unsigned char*)src_ptrs[s];
    unsigned char* out = dst + (long long)s * n_pixels * 3;
    const unsigned char* lut = luts + (long long)s * 768;
    const double* a = coeffs + (long long)blockIdx.y * 6;
    const float f = (float)values[s];
    const int row = 3 * width;
    int mean = 0;
    if (op == OP_CONTRAST) {  // int(mean(L) + 0.5) = (2 sum + N) // (2 N)
        mean = (int)((2ull * lum_sum[hist_slot[s]] + (unsigned long long)n_pixels) / (2ull * (unsigned long long)n_pixels));
    }

    const long long stride = (long long)gridDim.x * blockDim.x;
    const long long t0 = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (is_pointwise(op) && n_pixels % 4 == 0 && ((unsigned long long)img & 3) == 0 &&
        ((unsigned long long)out & 3) == 0) {
        // pointwise ops, aligned rows: 4 pixels per thread, three 4-byte loads and stores
        for (long long q = t0; q < n_pixels / 4; q += stride) {
            unsigned char in[12], o[12];
            copy12(in, img + 12 * q);
            for (int k = 0; k < 4; ++k) pointwise_px(op, in + 3 * k, o + 3 * k, lut, f, mean);
            copy12(out + 12 * q, o);
        }
        return;
    }
    for (long long p = t0; p < n_pixels; p += stride) {
        const int x = (int)(p % width), y = (int)(p / width);
        const unsigned char* in = img + 3 * p;
        unsigned char* o = out + 3 * p;
        switch (op) {
        case OP_ROTATE: case OP_SHEAR_X: case OP_SHEAR_Y: case OP_TRANSLATE_X: case OP_TRANSLATE_Y:
            affine_px(img, height, width, a, x, y, o);
            break;
        case OP_SHARPNESS: {
            const bool interior = x >= 1 && x <= width - 2 && y >= 1 && y <= height - 2;
            for (int c = 0; c < 3; ++c) {
                const int d = interior ? smooth_px(in, row, c) : in[c];
                o[c] = blend_px((float)d, (float)in[c], f);
            }
            break;
        }
        case OP_MIRROR: {
            const unsigned char* q = img + 3 * ((long long)y * width + (width - 1 - x));
            o[0] = q[0]; o[1] = q[1]; o[2] = q[2];
            break;
        }
        case OP_FLIP: {
            const unsigned char* q = img + 3 * ((long long)(height - 1 - y) * width + x);
            o[0] = q[0]; o[1] = q[1]; o[2] = q[2];
            break;
        }
        default:  // pointwise ops on an unaligned or odd-sized batch
            pointwise_px(op, in, o, lut, f, mean);
            break;
        }
    }
}
