// LUT construction for the point ops (gpuaug.executors.cuda), exactly as cpu.py.
//
// gpuaug_build_luts: one block per (channel, listed sample): grid (3, n_samples), block
// 256 threads (any size works).  Thread 0 reduces the channel histogram to the few
// numbers autocontrast / equalize need; then every thread fills LUT entries.
// luts is (N, 3, 256) uint8; hist is (n_hist, 3, 256) uint32, sample s's at slot
// hist_slot[s] (only read for autocontrast and equalize samples).

#define OP_IDENTITY 0
#define OP_AUTOCONTRAST 1
#define OP_EQUALIZE 2
#define OP_POSTERIZE 3
#define OP_SOLARIZE 4
#define OP_INVERT 16

extern "C" __global__ void gpuaug_build_luts(
    const int* __restrict__ ids, const double* __restrict__ values,
    const int* __restrict__ samples, const unsigned int* __restrict__ hist,
    const int* __restrict__ hist_slot, int n_pixels, unsigned char* __restrict__ luts)
{
    __shared__ long long before[256];  // equalize: sum of h[j] for j < i
    __shared__ int identity;           // 1 when the histogram op degenerates to identity
    __shared__ double scale, offset;   // autocontrast
    __shared__ long long step;         // equalize

    const int c = blockIdx.x;
    const int s = samples[blockIdx.y];
    const int op = ids[s];
    const double value = values[s];
    const int slot = hist_slot[s] > 0 ? hist_slot[s] : 0;  // -1: no histogram (never read)
    const unsigned int* h = hist + ((long long)slot * 3 + c) * 256;

    if (threadIdx.x == 0 && op == OP_AUTOCONTRAST) {
        // cut = floor(N * cutoff / 100) in float64; drop `cut` samples from each end.
        const double cut = floor(__ddiv_rn(__dmul_rn((double)n_pixels, value), 100.0));
        int lo = 255, hi = 0;
        long long cum = 0;
        for (int i = 0; i < 256; ++i) {
            cum += h[i];
            if ((double)cum > cut) { lo = i; break; }
        }
        cum = 0;
        for (int i = 255; i >= 0; --i) {
            cum += h[i];
            if ((double)cum > cut) { hi = i; break; }
        }
        identity = hi <= lo;
        scale = __ddiv_rn(255.0, (double)(hi > lo ? hi - lo : 1));
        offset = __dmul_rn((double)(-lo), scale);
    } else if (threadIdx.x == 0 && op == OP_EQUALIZE) {
        int last = 0, nonempty = 0;
        long long cum = 0;
        for (int i = 0; i < 256; ++i) {
            before[i] = cum;
            cum += h[i];
            if (h[i] != 0u) { last = i; ++nonempty; }
        }
        step = ((long long)n_pixels - (long long)h[last]) / 255;
        identity = nonempty <= 1 || step == 0;
    }
    __syncthreads();

    unsigned char* lut = luts + ((long long)s * 3 + c) * 256;
    for (int i = threadIdx.x; i < 256; i += blockDim.x) {
        int v = i;
        if (op == OP_AUTOCONTRAST) {
            if (!identity) {
                const double t = trunc(__dadd_rn(__dmul_rn((double)i, scale), offset));
                v = t <= 0.0 ? 0 : (t >= 255.0 ? 255 : (int)t);
            }
        } else if (op == OP_EQUALIZE) {
            if (!identity) {
                const long long e = (step / 2 + before[i]) / step;
                v = e < 255 ? (int)e : 255;
            }
        } else if (op == OP_POSTERIZE) {
            const int bits = (int)value;
            v = i & ((0xFF << (8 - bits)) & 0xFF);
        } else if (op == OP_SOLARIZE) {
            v = i < (int)value ? i : 255 - i;
        } else if (op == OP_INVERT) {
            v = 255 - i;
        }
        lut[i] = (unsigned char)v;
    }
}
