/* Positions: where each partition of a stream can be checkpointed. Records of a partition arrive
 * in order of their position (offset, LSN) and finish in any order (lanes of one partition run
 * side by side when parallelization_factor > 1); the checkpoint is the lowest position not yet
 * done. Pure: no I/O, no time. */
#ifndef WEIR_POSITIONS_H
#define WEIR_POSITIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/u32map.h"

struct weir_positions {
    struct weir_u32map parts; /* partition -> its outstanding positions */
};

void weir_positions_init(struct weir_positions *p);
void weir_positions_deinit(struct weir_positions *p);
/* A record at seq was read from part. false: seq is not above the last one read from part (the
 * source went back, as after a rebalance); the partition then starts over from seq. */
bool weir_positions_add(struct weir_positions *p, uint32_t part, uint64_t seq);
/* The record at seq of part is done. True when the partition's checkpoint moved: *done_below is
 * then the position below which every record read from part is done. A position not held (the
 * partition was forgotten since) is ignored. */
bool weir_positions_done(struct weir_positions *p, uint32_t part, uint64_t seq,
                         uint64_t *done_below);
/* Records of part read and not yet passed by its checkpoint (done ones behind a record not done
 * count too: they are still held). */
size_t weir_positions_held(const struct weir_positions *p, uint32_t part);
/* Forgets part: it is no longer read here. */
void weir_positions_forget(struct weir_positions *p, uint32_t part);

#endif
