// Pillow's BILINEAR resize for the downscale op (gpuaug.executors.cuda), exactly
// cpu.resize_pil_bilinear: one separable pass along one axis with the fixed-point taps of
// params.pil_bilinear_coefficients (computed on the host in float64, uploaded as int32),
// integer arithmetic only, rounded to 8 bits as Pillow's clip8 does.
//
// gpuaug_resample_pass: grid (blocks_per_sample, n_samples); blockIdx.y = j picks listed
// sample s = samples[j], whose pass is passes[6 j .. 6 j + 5] =
//   (in_h, in_w, axis, out_len, table_off, kmax)
// axis 0: horizontal, (in_h, in_w) -> (in_h, out_len); axis 1: vertical -> (out_len, in_w).
// The tables hold, from tables[table_off]: xmin[out_len], xsize[out_len], then
// kk[out_len * kmax] (row o: the taps of output index o, zero-padded to kmax).
// Images are dense (row stride = 3 * width) and start at i * sample_stride bytes, where i
// is s for an array indexed by sample (src_by_sample / dst_by_sample non-zero) and j for
// a compact buffer of the listed samples; with src_by_sample == 2 the source of sample s
// is at address src_ptrs[s] instead (src unused: rows of one step read either the input
// batch or their previous result, in one launch). Downscale runs four passes (two per resize, in
// Pillow's order): images -> buffer -> small -> buffer -> out.

#define PIL_PRECISION_BITS 22

// Pillow's clip8: v >> 22 clamped to 0..255 (v < 2^31 always: the taps sum to ~2^22).
static __device__ __forceinline__ unsigned char clip8(int v)
{
    const int q = v >> PIL_PRECISION_BITS;
    return (unsigned char)(q < 0 ? 0 : (q > 255 ? 255 : q));
}

extern "C" __global__ void gpuaug_resample_pass(
    const unsigned char* __restrict__ src, unsigned char* __restrict__ dst,
    const int* __restrict__ samples, const int* __restrict__ passes, const int* __restrict__ tables,
    long long sample_stride, int src_by_sample, int dst_by_sample,
    const unsigned long long* __restrict__ src_ptrs)
{
    const int j = blockIdx.y;
    const int s = samples[j];
    const int* pass = passes + 6 * j;
    const int in_h = pass[0], in_w = pass[1], axis = pass[2], out_len = pass[3];
    const int kmax = pass[5];
    const int* xmin = tables + pass[4];
    const int* xsize = xmin + out_len;
    const int* kk = xsize + out_len;
    const int out_h = axis == 0 ? in_h : out_len;
    const int out_w = axis == 0 ? out_len : in_w;
    const unsigned char* img = src_by_sample == 2
        ? reinterpret_cast<const unsigned char*>(src_ptrs[s])
        : src + (long long)(src_by_sample ? s : j) * sample_stride;
    unsigned char* out = dst + (long long)(dst_by_sample ? s : j) * sample_stride;
    // Distance in bytes between consecutive taps: the next pixel or the next row.
    const long long tap_step = axis == 0 ? 3 : 3LL * in_w;
    const long long n_out = (long long)out_h * out_w;

    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n_out; p += stride) {
        const int x = (int)(p % out_w), y = (int)(p / out_w);
        const int o = axis == 0 ? x : y;
        const int lo = xmin[o], n = xsize[o];
        const int* w = kk + (long long)o * kmax;
        const unsigned char* q = img + (axis == 0 ? ((long long)y * in_w + lo) * 3
                                                  : ((long long)lo * in_w + x) * 3);
        int acc0 = 1 << (PIL_PRECISION_BITS - 1), acc1 = acc0, acc2 = acc0;
        for (int k = 0; k < n; ++k, q += tap_step) {
            const int wk = w[k];
            acc0 += (int)q[0] * wk;
            acc1 += (int)q[1] * wk;
            acc2 += (int)q[2] * wk;
        }
        out[3 * p] = clip8(acc0);
        out[3 * p + 1] = clip8(acc1);
        out[3 * p + 2] = clip8(acc2);
    }
}
