// The content hash of ir/model.h (ContentHash) over plain bytes: checkpoint tensors, cache keys.
#pragma once

#include <cstddef>
#include <cstdint>

namespace asrc::ir {

// FNV-style 64-bit hash of `n` bytes (print it with HashHex, ir/model.h).
uint64_t HashBytes(const void* data, size_t n);

}  // namespace asrc::ir
