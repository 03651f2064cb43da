// Per-sample statistics for the image-level ops (gpuaug.executors.cuda).
//
// gpuaug_histograms: for each listed sample, either its three 256-bin channel
// histograms (autocontrast, equalize) or the sum of its grey levels L (contrast's
// mean).  Grid (blocks_per_sample, n_samples), any block size; bins are privatised in
// shared memory and merged into global memory once per block.
// Images are dense NHWC uint8, n_pixels = H * W per sample; sample s reads the image at
// src_ptrs[s]. Results are compact: listed sample j (blockIdx.y) writes hist[j] (3 x 256)
// and lum_sum[j].

#define OP_CONTRAST 11

extern "C" __global__ void gpuaug_histograms(
    const unsigned long long* __restrict__ src_ptrs, const int* __restrict__ ids,
    const int* __restrict__ samples, int n_pixels,
    unsigned int* __restrict__ hist, unsigned long long* __restrict__ lum_sum)
{
    __shared__ unsigned int bins[768];
    __shared__ unsigned long long block_sum;

    const int s = samples[blockIdx.y];
    const bool want_lum = ids[s] == OP_CONTRAST;  // uniform over the block
    for (int i = threadIdx.x; i < 768; i += blockDim.x) bins[i] = 0u;
    if (threadIdx.x == 0) block_sum = 0ull;
    __syncthreads();

    const unsigned char* img = (const unsigned char*)src_ptrs[s];
    const long long stride = (long long)gridDim.x * blockDim.x;
    unsigned long long local = 0ull;
    for (long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x; p < n_pixels; p += stride) {
        const int r = img[3 * p], g = img[3 * p + 1], b = img[3 * p + 2];
        if (want_lum) {
            local += (unsigned long long)((19595 * r + 38470 * g + 7471 * b + 32768) >> 16);
        } else {
            atomicAdd(&bins[r], 1u);
            atomicAdd(&bins[256 + g], 1u);
            atomicAdd(&bins[512 + b], 1u);
        }
    }
    if (want_lum && local != 0ull) atomicAdd(&block_sum, local);
    __syncthreads();

    if (want_lum) {
        if (threadIdx.x == 0 && block_sum != 0ull) atomicAdd(&lum_sum[blockIdx.y], block_sum);
    } else {
        unsigned int* out = hist + (long long)blockIdx.y * 768;
        for (int i = threadIdx.x; i < 768; i += blockDim.x) {
            if (bins[i] != 0u) atomicAdd(&out[i], bins[i]);
        }
    }
}
