/* MD5 of eight independent streams at once (AVX2: one 32-bit lane of a vector register per
 * stream). One MD5 is a chain of dependent steps and no faster than ~0.7 GB/s a core; eight run
 * side by side in the time of about one, so a thread hashing many files at a time hashes several
 * times the bytes. Blocks only: the caller pads and finishes each stream (weir_md5 from the
 * state). Owns no state. */
#ifndef WEIR_MD5X8_H
#define WEIR_MD5X8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WEIR_MD5X8_LANES 8

/* Whether this CPU can run weir_md5x8_blocks (AVX2). */
bool weir_md5x8_available(void);

/* Advances each lane's state (state[word][lane], MD5's A B C D) by nblocks 64-byte blocks read
 * from data[lane]. Every lane advances; a lane the caller does not use points at any nblocks
 * blocks and its state is thrown away. */
void weir_md5x8_blocks(uint32_t state[4][WEIR_MD5X8_LANES],
                       const unsigned char *const data[WEIR_MD5X8_LANES], size_t nblocks);

#endif
