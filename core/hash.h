/* Small hashing and identity helpers: FNV-1a, MD5 (for SQS md5OfBody), random UUIDs.
 * Owns no state beyond the random generator's seed. */
#ifndef WEIR_HASH_H
#define WEIR_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t weir_hash_fnv1a64(const void *data, size_t len);

struct weir_md5 {
    uint32_t state[4];
    uint64_t bytes;
    unsigned char block[64];
};
void weir_md5_init(struct weir_md5 *ctx);
void weir_md5_update(struct weir_md5 *ctx, const void *data, size_t len);
void weir_md5_final(struct weir_md5 *ctx, unsigned char digest[16]);
/* A digest as 32 lowercase hex digits plus NUL. */
void weir_md5_digest_hex(const unsigned char digest[16], char out[33]);
/* MD5 of data as 32 lowercase hex digits plus NUL. */
void weir_md5_hex(const void *data, size_t len, char out[33]);

/* A random (version 4) UUID, 36 characters plus NUL. */
void weir_uuid4(char out[37]);

#endif
