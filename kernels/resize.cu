// Pillow's BILINEAR resize for the downscale op (gpuaug.executors.cuda), exactly
// cpu.resize_pil_bilinear: one separable pass along one axis, integer arithmetic on
// fixed-point taps rounded to 8 bits as Pillow's clip8 does. The taps are those of
// params.pil_bilinear_coefficients, computed here per output index in float64 with the
// same operations in the same order (no FMA: NVRTC runs with --fmad=false), so no tables
// go up from the host.
//
// gpuaug_resample_pass: grid (blocks_per_sample, n_samples); blockIdx.y = j picks listed
// sample s = samples[j], whose pass is passes[4 j .. 4 j + 3] = (in_h, in_w, axis, out_len)
// axis 0: horizontal, (in_h, in_w) -> (in_h, out_len); axis 1: vertical -> (out_len, in_w).
// Images are dense (row stride = 3 * width) and start at i * sample_stride bytes, where i
// is s for an array indexed by sample (src_by_sample / dst_by_sample non-zero) and j for
// a compact buffer of the listed samples; with src_by_sample == 2 the source of sample s
// is at address src_ptrs[s] instead (src unused: rows of one step read either the input
// batch or their previous result, in one launch). Downscale runs four passes (two per
// resize, in Pillow's order): images -> buffer -> small -> buffer -> out.

#define PIL_PRECISION_BITS 22

// Pillow's clip8: v >> 22 clamped to 0..255 (v < 2^31 always: the taps sum to ~2^22).
static __device__ __forceinline__ unsigned char clip8(int v)
{
    const int q = v >> PIL_PRECISION_BITS;
    return (unsigned char)(q < 0 ? 0 : (q > 255 ? 255 : q));
}

// Unnormalised triangle weight of tap k for an output centred at `center`.
static __device__ __forceinline__ double tap_weight(int k, int xmin, double center, double ss)
{
    const double t = fabs(__dmul_rn(__dadd_rn(__dsub_rn((double)(k + xmin), center), 0.5), ss));
    return t < 1.0 ? __dsub_rn(1.0, t) : 0.0;
}

extern "C" __global__ void gpuaug_resample_pass(
    const unsigned char* __restrict__ src, unsigned char* __restrict__ dst,
    const int* __restrict__ samples, const int* __restrict__ passes,
    long long sample_stride, int src_by_sample, int dst_by_sample,
    const unsigned long long* __restrict__ src_ptrs)
{
    const int j = blockIdx.y;
    const int s = samples[j];
    const int* pass = passes + 4 * j;
    const int in_h = pass[0], in_w = pass[1], axis = pass[2], out_len = pass[3];
    const int n_in = axis == 0 ? in_w : in_h;
    const int out_h = axis == 0 ? in_h : out_len;
    const int out_w = axis == 0 ? out_len : in_w;
    const unsigned char* img = src_by_sample == 2
        ? reinterpret_cast<const unsigned char*>(src_ptrs[s])
        : src + (long long)(src_by_sample ? s : j) * sample_stride;
    unsigned char* out = dst + (long long)(dst_by_sample ? s : j) * sample_stride;
    // Distance in bytes between consecutive taps: the next pixel or the next row.
    const long long tap_step = axis == 0 ? 3 : 3LL * in_w;
    const long long n_out = (long long)out_h * out_w;
    // params.pil_bilinear_coefficients, per axis
    const double scale = __ddiv_rn((double)n_in, (double)out_len);
    const double filterscale = scale > 1.0 ? scale : 1.0;
    const double support = __dmul_rn(1.0, filterscale);
    const double ss = __ddiv_rn(1.0, filterscale);
    const double one = (double)(1 << PIL_PRECISION_BITS);

    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n_out; p += stride) {
        const int x = (int)(p % out_w), y = (int)(p / out_w);
        const int o = axis == 0 ? x : y;
        const double center = __dmul_rn(__dadd_rn((double)o, 0.5), scale);
        double lo_d = trunc(__dadd_rn(__dsub_rn(center, support), 0.5));
        lo_d = lo_d > 0.0 ? lo_d : 0.0;
        double hi_d = trunc(__dadd_rn(__dadd_rn(center, support), 0.5));
        hi_d = hi_d < (double)n_in ? hi_d : (double)n_in;
        const int lo = (int)lo_d, n = (int)hi_d - lo;
        double total = 0.0;
        for (int k = 0; k < n; ++k) total = __dadd_rn(total, tap_weight(k, lo, center, ss));
        const unsigned char* q = img + (axis == 0 ? ((long long)y * in_w + lo) * 3
                                                  : ((long long)lo * in_w + x) * 3);
        int acc0 = 1 << (PIL_PRECISION_BITS - 1), acc1 = acc0, acc2 = acc0;
        for (int k = 0; k < n; ++k, q += tap_step) {
            double w = tap_weight(k, lo, center, ss);
            if (total != 0.0) w = __ddiv_rn(w, total);
            const double f = __dmul_rn(w, one);
            const int wk = (int)(w < 0.0 ? trunc(__dadd_rn(-0.5, f)) : trunc(__dadd_rn(0.5, f)));
            acc0 += (int)q[0] * wk;
            acc1 += (int)q[1] * wk;
            acc2 += (int)q[2] * wk;
        }
        out[3 * p] = clip8(acc0);
        out[3 * p + 1] = clip8(acc1);
        out[3 * p + 2] = clip8(acc2);
    }
}
