/* The eTag's hash: how many bytes a second one core hashes with OpenSSL's MD5 (one stream, what a
 * lone file gets), with core/hash.c's MD5 (one stream, what finishes a file's tail), and with
 * core/md5x8.c (eight streams side by side, what files arriving together get). Each runs over the
 * same 64 MiB per stream, in 64 KiB steps as the bucket's hashing threads read. A program that
 * prints figures, never a test.
 *
 *   build/bench_md5 [--mib N]     # N MiB per stream (64) */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "core/hash.h"
#include "core/md5x8.h"

#define STEP (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mib = 64;
    static const struct option opts[] = {{"mib", required_argument, NULL, 'm'}, {0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        if (c != 'm' || atoi(optarg) < 1) {
            fprintf(stderr, "usage: bench_md5 [--mib N]\n");
            return 2;
        }
        mib = (size_t)atoi(optarg);
    }
    size_t len = mib << 20;
    unsigned char *data[WEIR_MD5X8_LANES];
    for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
        data[l] = malloc(len);
        if (!data[l])
            return 1;
        for (size_t i = 0; i < len; i++)
            data[l][i] = (unsigned char)(i * 131 + (size_t)l * 7 + (i >> 13));
    }

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen;
    double t0 = now_s();
    EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
    for (size_t at = 0; at < len; at += STEP)
        EVP_DigestUpdate(ctx, data[0] + at, STEP);
    EVP_DigestFinal_ex(ctx, digest, &dlen);
    double openssl_s = now_s() - t0;
    EVP_MD_CTX_free(ctx);

    struct weir_md5 one;
    unsigned char mine[16];
    t0 = now_s();
    weir_md5_init(&one);
    for (size_t at = 0; at < len; at += STEP)
        weir_md5_update(&one, data[0] + at, STEP);
    weir_md5_final(&one, mine);
    double c_s = now_s() - t0;
    if (memcmp(mine, digest, 16) != 0) {
        fprintf(stderr, "core/hash.c's MD5 differs from OpenSSL's\n");
        return 1;
    }

    printf("MD5 on one core, %zu MiB per stream in %d KiB steps\n", mib, STEP / 1024);
    printf("  OpenSSL, one stream          %6.2f GB/s\n", (double)len / openssl_s / 1e9);
    printf("  core/hash.c, one stream      %6.2f GB/s\n", (double)len / c_s / 1e9);
    if (!weir_md5x8_available()) {
        printf("  core/md5x8.c, eight streams  (no AVX2 on this CPU)\n");
        for (int l = 0; l < WEIR_MD5X8_LANES; l++)
            free(data[l]);
        return 0;
    }
    uint32_t state[4][WEIR_MD5X8_LANES];
    for (int l = 0; l < WEIR_MD5X8_LANES; l++) {
        weir_md5_init(&one);
        for (int k = 0; k < 4; k++)
            state[k][l] = one.state[k];
    }
    t0 = now_s();
    for (size_t at = 0; at < len; at += STEP) {
        const unsigned char *p[WEIR_MD5X8_LANES];
        for (int l = 0; l < WEIR_MD5X8_LANES; l++)
            p[l] = data[l] + at;
        weir_md5x8_blocks(state, p, STEP / 64);
    }
    double x8_s = now_s() - t0;
    /* Lane 0 finished on its own must be stream 0's MD5. */
    for (int k = 0; k < 4; k++)
        one.state[k] = state[k][0];
    one.bytes = len;
    weir_md5_final(&one, mine);
    if (memcmp(mine, digest, 16) != 0) {
        fprintf(stderr, "core/md5x8.c's lane 0 differs from OpenSSL's MD5\n");
        return 1;
    }
    printf("  core/md5x8.c, eight streams  %6.2f GB/s (all eight together)\n",
           (double)len * WEIR_MD5X8_LANES / x8_s / 1e9);
    for (int l = 0; l < WEIR_MD5X8_LANES; l++)
        free(data[l]);
    return 0;
}
