/* Eight MD5 streams in the lanes of AVX2 registers (md5x8.h). The 64 steps are MD5's (RFC 1321)
 * written once for a vector of eight words; each block's sixteen words arrive transposed, word i
 * of every lane in one register. */
#include "core/md5x8.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))

/* libgcc fills in the CPU's features before main (and before any thread asks). */
bool weir_md5x8_available(void)
{
    return __builtin_cpu_supports("avx2");
}

/* Eight rows of eight 32-bit words (rows[lane], words 0..7) into eight columns (word k of every
 * lane in out[k]). */
TARGET static inline void transpose8(const __m256i r[8], __m256i out[8])
{
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    out[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    out[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    out[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    out[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    out[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    out[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    out[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    out[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

#define ADD(x, y)  _mm256_add_epi32((x), (y))
#define ROTL(x, s) _mm256_or_si256(_mm256_slli_epi32((x), (s)), _mm256_srli_epi32((x), 32 - (s)))
#define NOT(x)     _mm256_xor_si256((x), ones)
#define F(b, c, d) _mm256_xor_si256((d), _mm256_and_si256((b), _mm256_xor_si256((c), (d))))
#define G(b, c, d) _mm256_xor_si256((c), _mm256_and_si256((d), _mm256_xor_si256((b), (c))))
#define H(b, c, d) _mm256_xor_si256(_mm256_xor_si256((b), (c)), (d))
#define I(b, c, d) _mm256_xor_si256((c), _mm256_or_si256((b), NOT(d)))
#define STEP(fn, a, b, c, d, w, k, s)                                                              \
    (a) = ADD((b),                                                                                 \
              ROTL(ADD(ADD((a), fn((b), (c), (d))), ADD((w), _mm256_set1_epi32((int)(k)))), (s)))

TARGET void weir_md5x8_blocks(uint32_t state[4][WEIR_MD5X8_LANES],
                              const unsigned char *const data[WEIR_MD5X8_LANES], size_t nblocks)
{
    const __m256i ones = _mm256_set1_epi32(-1);
    __m256i a = _mm256_loadu_si256((const __m256i *)state[0]);
    __m256i b = _mm256_loadu_si256((const __m256i *)state[1]);
    __m256i c = _mm256_loadu_si256((const __m256i *)state[2]);
    __m256i d = _mm256_loadu_si256((const __m256i *)state[3]);
    for (size_t n = 0; n < nblocks; n++) {
        __m256i rows[8], w[16];
        /* MD5 reads little-endian words, as x86 stores them. */
        for (int l = 0; l < 8; l++)
            rows[l] = _mm256_loadu_si256((const __m256i *)(data[l] + n * 64));
        transpose8(rows, w);
        for (int l = 0; l < 8; l++)
            rows[l] = _mm256_loadu_si256((const __m256i *)(data[l] + n * 64 + 32));
        transpose8(rows, w + 8);
        __m256i aa = a, bb = b, cc = c, dd = d;

        STEP(F, a, b, c, d, w[0], 0xd76aa478, 7);
        STEP(F, d, a, b, c, w[1], 0xe8c7b756, 12);
        STEP(F, c, d, a, b, w[2], 0x242070db, 17);
        STEP(F, b, c, d, a, w[3], 0xc1bdceee, 22);
        STEP(F, a, b, c, d, w[4], 0xf57c0faf, 7);
        STEP(F, d, a, b, c, w[5], 0x4787c62a, 12);
        STEP(F, c, d, a, b, w[6], 0xa8304613, 17);
        STEP(F, b, c, d, a, w[7], 0xfd469501, 22);
        STEP(F, a, b, c, d, w[8], 0x698098d8, 7);
        STEP(F, d, a, b, c, w[9], 0x8b44f7af, 12);
        STEP(F, c, d, a, b, w[10], 0xffff5bb1, 17);
        STEP(F, b, c, d, a, w[11], 0x895cd7be, 22);
        STEP(F, a, b, c, d, w[12], 0x6b901122, 7);
        STEP(F, d, a, b, c, w[13], 0xfd987193, 12);
        STEP(F, c, d, a, b, w[14], 0xa679438e, 17);
        STEP(F, b, c, d, a, w[15], 0x49b40821, 22);

        STEP(G, a, b, c, d, w[1], 0xf61e2562, 5);
        STEP(G, d, a, b, c, w[6], 0xc040b340, 9);
        STEP(G, c, d, a, b, w[11], 0x265e5a51, 14);
        STEP(G, b, c, d, a, w[0], 0xe9b6c7aa, 20);
        STEP(G, a, b, c, d, w[5], 0xd62f105d, 5);
        STEP(G, d, a, b, c, w[10], 0x02441453, 9);
        STEP(G, c, d, a, b, w[15], 0xd8a1e681, 14);
        STEP(G, b, c, d, a, w[4], 0xe7d3fbc8, 20);
        STEP(G, a, b, c, d, w[9], 0x21e1cde6, 5);
        STEP(G, d, a, b, c, w[14], 0xc33707d6, 9);
        STEP(G, c, d, a, b, w[3], 0xf4d50d87, 14);
        STEP(G, b, c, d, a, w[8], 0x455a14ed, 20);
        STEP(G, a, b, c, d, w[13], 0xa9e3e905, 5);
        STEP(G, d, a, b, c, w[2], 0xfcefa3f8, 9);
        STEP(G, c, d, a, b, w[7], 0x676f02d9, 14);
        STEP(G, b, c, d, a, w[12], 0x8d2a4c8a, 20);

        STEP(H, a, b, c, d, w[5], 0xfffa3942, 4);
        STEP(H, d, a, b, c, w[8], 0x8771f681, 11);
        STEP(H, c, d, a, b, w[11], 0x6d9d6122, 16);
        STEP(H, b, c, d, a, w[14], 0xfde5380c, 23);
        STEP(H, a, b, c, d, w[1], 0xa4beea44, 4);
        STEP(H, d, a, b, c, w[4], 0x4bdecfa9, 11);
        STEP(H, c, d, a, b, w[7], 0xf6bb4b60, 16);
        STEP(H, b, c, d, a, w[10], 0xbebfbc70, 23);
        STEP(H, a, b, c, d, w[13], 0x289b7ec6, 4);
        STEP(H, d, a, b, c, w[0], 0xeaa127fa, 11);
        STEP(H, c, d, a, b, w[3], 0xd4ef3085, 16);
        STEP(H, b, c, d, a, w[6], 0x04881d05, 23);
        STEP(H, a, b, c, d, w[9], 0xd9d4d039, 4);
        STEP(H, d, a, b, c, w[12], 0xe6db99e5, 11);
        STEP(H, c, d, a, b, w[15], 0x1fa27cf8, 16);
        STEP(H, b, c, d, a, w[2], 0xc4ac5665, 23);

        STEP(I, a, b, c, d, w[0], 0xf4292244, 6);
        STEP(I, d, a, b, c, w[7], 0x432aff97, 10);
        STEP(I, c, d, a, b, w[14], 0xab9423a7, 15);
        STEP(I, b, c, d, a, w[5], 0xfc93a039, 21);
        STEP(I, a, b, c, d, w[12], 0x655b59c3, 6);
        STEP(I, d, a, b, c, w[3], 0x8f0ccc92, 10);
        STEP(I, c, d, a, b, w[10], 0xffeff47d, 15);
        STEP(I, b, c, d, a, w[1], 0x85845dd1, 21);
        STEP(I, a, b, c, d, w[8], 0x6fa87e4f, 6);
        STEP(I, d, a, b, c, w[15], 0xfe2ce6e0, 10);
        STEP(I, c, d, a, b, w[6], 0xa3014314, 15);
        STEP(I, b, c, d, a, w[13], 0x4e0811a1, 21);
        STEP(I, a, b, c, d, w[4], 0xf7537e82, 6);
        STEP(I, d, a, b, c, w[11], 0xbd3af235, 10);
        STEP(I, c, d, a, b, w[2], 0x2ad7d2bb, 15);
        STEP(I, b, c, d, a, w[9], 0xeb86d391, 21);

        a = ADD(a, aa);
        b = ADD(b, bb);
        c = ADD(c, cc);
        d = ADD(d, dd);
    }
    _mm256_storeu_si256((__m256i *)state[0], a);
    _mm256_storeu_si256((__m256i *)state[1], b);
    _mm256_storeu_si256((__m256i *)state[2], c);
    _mm256_storeu_si256((__m256i *)state[3], d);
}

#else /* no AVX2 on this architecture: callers hash one stream at a time */

bool weir_md5x8_available(void)
{
    return false;
}

void weir_md5x8_blocks(uint32_t state[4][WEIR_MD5X8_LANES],
                       const unsigned char *const data[WEIR_MD5X8_LANES], size_t nblocks)
{
    (void)state;
    (void)data;
    (void)nblocks;
}

#endif
