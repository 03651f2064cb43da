// Bilinear resize for the downscale op (gpuaug.executors.cuda), exactly cpu.resize_bilinear:
// half-pixel centres, edge clamp, no antialiasing, float64 without FMA, separable
// (rows first, then columns), round half up.
//
// gpuaug_resize_bilinear: grid (blocks_per_sample, n_samples); blockIdx.y picks a
// listed sample s, whose sizes are sizes[s] = (in_h, in_w, out_h, out_w).  Sample s
// starts at s * sample_stride bytes in both src and dst and is stored densely
// (row stride = 3 * its width).  Downscale runs it twice: images -> small buffer -> out.

struct Tap { int i0, i1; double frac; };

// Source rows/columns and weight for output index o of n_out taken from n_in.
static __device__ __forceinline__ Tap tap(int o, int n_in, int n_out)
{
    const double ratio = __ddiv_rn((double)n_in, (double)n_out);
    double v = __dsub_rn(__dmul_rn(__dadd_rn((double)o, 0.5), ratio), 0.5);
    if (v < 0.0) v = 0.0;
    const double fl = floor(v);
    Tap t;
    t.frac = __dsub_rn(v, fl);
    t.i0 = (int)fl < n_in - 1 ? (int)fl : n_in - 1;
    t.i1 = t.i0 + 1 < n_in - 1 ? t.i0 + 1 : n_in - 1;
    return t;
}

// Row-interpolated value at source column x (the rows-first stage).
static __device__ __forceinline__ double row_value(const unsigned char* img, int row, Tap ty, int x, int c)
{
    const double p0 = img[(long long)ty.i0 * row + 3 * x + c];
    const double p1 = img[(long long)ty.i1 * row + 3 * x + c];
    return __dadd_rn(p0, __dmul_rn(__dsub_rn(p1, p0), ty.frac));
}

extern "C" __global__ void gpuaug_resize_bilinear(
    const unsigned char* __restrict__ src, unsigned char* __restrict__ dst,
    const int* __restrict__ samples, const int* __restrict__ sizes, long long sample_stride)
{
    const int s = samples[blockIdx.y];
    const int in_h = sizes[4 * s], in_w = sizes[4 * s + 1];
    const int out_h = sizes[4 * s + 2], out_w = sizes[4 * s + 3];
    const unsigned char* img = src + (long long)s * sample_stride;
    unsigned char* out = dst + (long long)s * sample_stride;
    const long long n_out = (long long)out_h * out_w;

    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n_out; p += stride) {
        const int x = (int)(p % out_w), y = (int)(p / out_w);
        const Tap ty = tap(y, in_h, out_h), tx = tap(x, in_w, out_w);
        for (int c = 0; c < 3; ++c) {
            const double r0 = row_value(img, 3 * in_w, ty, tx.i0, c);
            const double r1 = row_value(img, 3 * in_w, ty, tx.i1, c);
            const double val = __dadd_rn(r0, __dmul_rn(__dsub_rn(r1, r0), tx.frac));
            out[3 * p + c] = (unsigned char)(int)floor(__dadd_rn(val, 0.5));
        }
    }
}
