// Chained hashing of KV-cache blocks, shared by workers (prefix cache) and the
// router (prefix-aware placement). It must be stable across processes, machines
// and builds, so it is XXH3-64 over the little-endian int32 token ids — never
// std::hash or absl::Hash.
//
//   h_0 = XXH3_64bits_withSeed(tokens of block 0, seed = kRootBlockHash)
//   h_i = XXH3_64bits_withSeed(tokens of block i, seed = h_{i-1})
//
// Thread-safe: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace tessera {

using BlockHash = uint64_t;

// Seed of the first block of every sequence.
inline constexpr BlockHash kRootBlockHash = 0;

// Hash of one block given the hash of the block before it (kRootBlockHash for
// the first block). `tokens` is the block's token ids, normally exactly
// block_size of them.
BlockHash HashBlock(BlockHash parent, std::span<const int32_t> tokens);

// Hashes of every *full* block of `tokens` (a trailing partial block gets no
// hash), chained from kRootBlockHash. Requires block_size > 0.
std::vector<BlockHash> HashFullBlocks(std::span<const int32_t> tokens, int block_size);

}  // namespace tessera
