#include "common/block_hash.h"

#include <bit>
#include <cstring>

#include "xxhash.h"

namespace tessera {

static_assert(std::endian::native == std::endian::little,
              "block hashes are defined over little-endian int32 token ids");

BlockHash HashBlock(BlockHash parent, std::span<const int32_t> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
}

std::vector<BlockHash> HashFullBlocks(std::span<const int32_t> tokens, int block_size) {
  std::vector<BlockHash> hashes;
  const size_t n_full = tokens.size() / static_cast<size_t>(block_size);
  hashes.reserve(n_full);
  BlockHash parent = kRootBlockHash;
  for (size_t i = 0; i < n_full; ++i) {
    parent = HashBlock(parent, tokens.subspan(i * block_size, block_size));
    hashes.push_back(parent);
  }
  return hashes;
}

}  // namespace tessera
