// Strong integer id types, so a block id cannot be passed where a sequence id is
// expected. Value types; thread-safe as any int.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace tessera {

template <typename Tag, typename T = int64_t>
class StrongId {
 public:
  using ValueType = T;
  constexpr StrongId() = default;
  constexpr explicit StrongId(T v) : v_(v) {}
  constexpr T value() const { return v_; }
  constexpr auto operator<=>(const StrongId&) const = default;
  template <typename H>
  friend H AbslHashValue(H h, StrongId id) {
    return H::combine(std::move(h), id.v_);
  }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) { return os << id.v_; }

 private:
  T v_{-1};
};

struct SeqIdTag {};
// Engine-internal id of a sequence; unique for the life of an engine.
using SeqId = StrongId<SeqIdTag, int64_t>;

}  // namespace tessera

template <typename Tag, typename T>
struct std::hash<tessera::StrongId<Tag, T>> {
  size_t operator()(tessera::StrongId<Tag, T> id) const noexcept {
    return std::hash<T>{}(id.value());
  }
};
