// Crops of the mixing pictures (gpuaug.mixing.MixingSet.gather on a CUDA set): exactly
// the numpy fancy indexing of mixing._crop_index / _blank, one launch for the batch.
//
// gpuaug_gather_crops: grid (blocks_per_sample, n), blockIdx.y = output sample j with
// params[4 j .. 4 j + 3] = (picture index, top, left, flip). Output pixel (y, x) reads
// picture pixel (top - pad + y, left - pad + (flip ? width - 1 - x : x)) of the
// (count, side, side, 3) set; a pixel in the zero border of the padded picture is 0.

extern "C" __global__ void gpuaug_gather_crops(
    const unsigned char* __restrict__ set, unsigned char* __restrict__ out,
    const int* __restrict__ params, int side, int pad, int height, int width)
{
    const int j = blockIdx.y;
    const int* p = params + 4 * j;
    const long long side_px = (long long)side * side;
    const unsigned char* pic = set + (long long)p[0] * side_px * 3;
    const int top = p[1] - pad, left = p[2] - pad, flip = p[3];
    unsigned char* dst = out + (long long)j * height * width * 3;
    const long long n_px = (long long)height * width;
    const long long stride = (long long)gridDim.x * blockDim.x;
    for (long long q = (long long)blockIdx.x * blockDim.x + threadIdx.x; q < n_px; q += stride) {
        const int x = (int)(q % width), y = (int)(q / width);
        const int sy = top + y, sx = left + (flip ? width - 1 - x : x);
        unsigned char r = 0, g = 0, b = 0;
        if (sy >= 0 && sy < side && sx >= 0 && sx < side) {
            const unsigned char* s = pic + ((long long)sy * side + sx) * 3;
            r = s[0]; g = s[1]; b = s[2];
        }
        dst[3 * q] = r;
        dst[3 * q + 1] = g;
        dst[3 * q + 2] = b;
    }
}
