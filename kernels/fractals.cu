// Procedural fractals (gpuaug.fractals): iterated function systems and escape-time
// fractals with orbit traps. Every random choice is in the plan (host); kernels only
// evaluate it. Arithmetic is float64 with no transcendental functions (sqrt only, which
// is correctly rounded), written in the same operation order as the numpy twin in
// gpuaug/fractals.py; compile with --fmad=false so results match it exactly.
//
// Layouts (n = images in the plan; `slots` lists the plan rows a launch renders):
//   palette  (n, 256, 3) uint8        background (n, 3) uint8
//   ifs_maps (n, 4, 6) double: x' = (a*x + b*y) + e, y' = (c*x + d*y) + f as a,b,c,d,e,f
//   ifs_cum  (n, 4) double: cumulative map probabilities (>= 1 past the last map)
//   ifs_frame (n, 3) double: x0, y0, span of the square window in attractor space
//   esc_f    (n, 12) double: cr, ci, cx, cy, span, cos, sin, trap p0, p1, p2, scale, weight
//   esc_i    (n, 4) int: power (2 or 3), max_iter, trap kind (0 point, 1 line, 2 circle), 0
//   out      (n, size, size, 3) uint8, written at the rows named by slots

#define FRACTAL_MAX_MAPS 4

__device__ __forceinline__ unsigned int frac_mix(unsigned int h)
{
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

// A uniform double in [0, 1) with 24 random bits, exact in float64.
__device__ __forceinline__ double frac_uniform(unsigned int h)
{
    return (double)(h >> 8) * (1.0 / 16777216.0);
}

// Chaos game: one thread per (slot, walker); each walker runs burn + steps iterations
// and counts the points after burn-in in an int histogram (n_slots, size, size).
extern "C" __global__ void ifs_accumulate(
    const int* slots, int n_slots, const unsigned int* seeds, const double* maps,
    const double* cum, const double* frame, int size, int walkers, int burn, int steps,
    int* hist)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= (long long)n_slots * walkers) return;
    int k = (int)(t / walkers);
    unsigned int w = (unsigned int)(t - (long long)k * walkers);
    int img = slots[k];
    const double* m = maps + (long long)img * FRACTAL_MAX_MAPS * 6;
    const double* cp = cum + (long long)img * FRACTAL_MAX_MAPS;
    double x0 = frame[img * 3 + 0];
    double y0 = frame[img * 3 + 1];
    double inv = (double)size / frame[img * 3 + 2];
    double fsize = (double)size;
    int* h = hist + (long long)k * size * size;

    unsigned int hw = frac_mix(frac_mix(seeds[img] ^ 0x9e3779b9u) ^ w);
    double x = frac_uniform(frac_mix(hw ^ 0xffffffffu)) * 2.0 - 1.0;
    double y = frac_uniform(frac_mix(hw ^ 0xfffffffeu)) * 2.0 - 1.0;
    int total = burn + steps;
    for (int s = 0; s < total; ++s) {
        double u = frac_uniform(frac_mix(hw ^ (unsigned int)s));
        int j = 0;
        while (j < FRACTAL_MAX_MAPS - 1 && u >= cp[j]) ++j;
        const double* a = m + j * 6;
        double nx = (a[0] * x + a[1] * y) + a[4];
        double ny = (a[2] * x + a[3] * y) + a[5];
        x = nx;
        y = ny;
        if (s < burn) continue;
        double fx = (x - x0) * inv;
        double fy = (y - y0) * inv;
        if (fx >= 0.0 && fx < fsize && fy >= 0.0 && fy < fsize) {
            int col = (int)fx;
            int row = size - 1 - (int)fy;
            atomicAdd(h + row * size + col, 1);
        }
    }
}

// Density -> colour: empty pixels get the background, others palette[1 + int(254 * t)]
// with t = (count / max)^(1/4) (two correctly rounded square roots).
extern "C" __global__ void ifs_colour(
    const int* slots, int n_slots, int size, const int* hist, const int* hmax,
    const unsigned char* palette, const unsigned char* background, unsigned char* out)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)size * size;
    if (t >= (long long)n_slots * plane) return;
    int k = (int)(t / plane);
    long long p = t - (long long)k * plane;
    int img = slots[k];
    int count = hist[t];
    const unsigned char* rgb;
    if (count == 0) {
        rgb = background + img * 3;
    } else {
        double v = sqrt(sqrt((double)count / (double)hmax[k]));
        int idx = 1 + (int)(v * 254.0);
        if (idx > 255) idx = 255;
        rgb = palette + ((long long)img * 256 + idx) * 3;
    }
    unsigned char* o = out + ((long long)img * plane + p) * 3;
    o[0] = rgb[0];
    o[1] = rgb[1];
    o[2] = rgb[2];
}

// Julia sets z -> z^p + c (p = 2 or 3) coloured by an orbit trap and the escape count:
// t = w / (1 + scale * trap_distance) + (1 - w) * n / max_iter, colour palette[int(255 t)].
extern "C" __global__ void escape_time(
    const int* slots, int n_slots, int size, const double* esc_f, const int* esc_i,
    const unsigned char* palette, unsigned char* out)
{
    long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    long long plane = (long long)size * size;
    if (t >= (long long)n_slots * plane) return;
    int k = (int)(t / plane);
    long long p = t - (long long)k * plane;
    int row = (int)(p / size);
    int col = (int)(p - (long long)row * size);
    int img = slots[k];
    const double* f = esc_f + (long long)img * 12;
    const int* q = esc_i + (long long)img * 4;
    double cr = f[0], ci = f[1];
    double half = (double)size * 0.5;
    double pix = f[4] / (double)size;
    double du = ((double)col + 0.5 - half) * pix;
    double dv = ((double)row + 0.5 - half) * pix;
    double x = f[2] + (f[5] * du - f[6] * dv);
    double y = f[3] + (f[6] * du + f[5] * dv);
    int power = q[0];
    int max_iter = q[1];
    int trap = q[2];
    double p0 = f[7], p1 = f[8], p2 = f[9];
    double dmin = 1e300;
    int n = 0;
    while (n < max_iter) {
        double xx = x * x;
        double yy = y * y;
        double nx, ny;
        if (power == 3) {
            nx = x * (xx - 3.0 * yy) + cr;
            ny = y * (3.0 * xx - yy) + ci;
        } else {
            nx = (xx - yy) + cr;
            ny = 2.0 * x * y + ci;
        }
        x = nx;
        y = ny;
        ++n;
        double d;
        if (trap == 1) {
            d = (p0 * x + p1 * y) + p2;
            d = d < 0.0 ? -d : d;
        } else {
            double dx = x - p0;
            double dy = y - p1;
            d = sqrt(dx * dx + dy * dy);
            if (trap == 2) {
                d = d - p2;
                d = d < 0.0 ? -d : d;
            }
        }
        dmin = d < dmin ? d : dmin;
        if (x * x + y * y > 4.0) break;
    }
    double w = f[11];
    double v = w / (1.0 + f[10] * dmin) + (1.0 - w) * ((double)n / (double)max_iter);
    int idx = (int)(v * 255.0);
    if (idx > 255) idx = 255;
    if (idx < 0) idx = 0;
    const unsigned char* rgb = palette + ((long long)img * 256 + idx) * 3;
    unsigned char* o = out + ((long long)img * plane + p) * 3;
    o[0] = rgb[0];
    o[1] = rgb[1];
    o[2] = rgb[2];
}
