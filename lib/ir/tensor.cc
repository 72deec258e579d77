#include "ir/tensor.h"

#include <unistd.h>

#include <atomic>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <new>

namespace asrc::ir {

namespace {

std::atomic<size_t> g_in_use{0};
std::atomic<size_t> g_budget{0};  // 0: not yet set

// ASRC_MEMORY_BUDGET ("8G", "512M", "1073741824"), else physical memory; 0 when neither is known.
size_t DefaultBudget() {
  if (const char* env = std::getenv("ASRC_MEMORY_BUDGET"); env && *env) {
    char* end = nullptr;
    double v = std::strtod(env, &end);
    double unit = 1;
    switch (end && *end ? *end : ' ') {
      case 'k': case 'K': unit = 1024.0; break;
      case 'm': case 'M': unit = 1024.0 * 1024; break;
      case 'g': case 'G': unit = 1024.0 * 1024 * 1024; break;
      case 't': case 'T': unit = 1024.0 * 1024 * 1024 * 1024; break;
      default: break;
    }
    if (v > 0 && v * unit < 1.8e19) return static_cast<size_t>(v * unit);
  }
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
}

// Reserves `nbytes` against the budget or throws MemoryBudgetError saying what was asked for.
void Reserve(size_t nbytes, const char* what) {
  const size_t budget = MemoryBudget();
  const size_t used = g_in_use.fetch_add(nbytes) + nbytes;
  if (budget == 0 || (used >= nbytes && used <= budget)) return;
  g_in_use.fetch_sub(nbytes);
  throw MemoryBudgetError(std::string(what) + " of " + BytesText(static_cast<double>(nbytes)) +
                          " would go over the memory budget of " +
                          BytesText(static_cast<double>(budget)) + " (" +
                          BytesText(static_cast<double>(used - nbytes)) +
                          " in use; ASRC_MEMORY_BUDGET sets it)");
}

}  // namespace

void SetMemoryBudget(size_t bytes) { g_budget = bytes ? bytes : DefaultBudget(); }

size_t MemoryBudget() {
  size_t b = g_budget.load();
  if (b == 0) {
    b = DefaultBudget();
    g_budget = b;
  }
  return b;
}

size_t MemoryInUse() { return g_in_use.load(); }

std::string BytesText(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.3g %s", bytes, units[u]);
  return buf;
}

size_t DTypeSize(DType t) {
  switch (t) {
    case DType::Float32: return 4;
    case DType::Uint8: return 1;
    case DType::Int8: return 1;
    case DType::Uint16: return 2;
    case DType::Int16: return 2;
    case DType::Int32: return 4;
    case DType::Int64: return 8;
    case DType::Bool: return 1;
    case DType::Float16: return 2;
    case DType::Float64: return 8;
    case DType::Uint32: return 4;
    case DType::Uint64: return 8;
    case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    case DType::BFloat16: return 2;
    case DType::String:
    case DType::Undefined: return 0;
  }
  return 0;
}

const char* DTypeName(DType t) {
  switch (t) {
    case DType::Undefined: return "undefined";
    case DType::Float32: return "float32";
    case DType::Uint8: return "uint8";
    case DType::Int8: return "int8";
    case DType::Uint16: return "uint16";
    case DType::Int16: return "int16";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::String: return "string";
    case DType::Bool: return "bool";
    case DType::Float16: return "float16";
    case DType::Float64: return "float64";
    case DType::Uint32: return "uint32";
    case DType::Uint64: return "uint64";
    case DType::Complex64: return "complex64";
    case DType::Complex128: return "complex128";
    case DType::BFloat16: return "bfloat16";
  }
  return "unknown";
}

bool DTypeKnown(int32_t code) { return code >= 0 && code <= 16; }

int64_t ShapeNumel(const Shape& s) {
  // The product of the nonzero dims must fit too: an empty tensor of shape [0, 2^40, 2^40] has
  // strides and row sizes (2^80) that kernels compute in int64 (onnx_run_fuzzer).
  int64_t n = 1;
  bool empty = false;
  for (int64_t d : s) {
    if (d < 0) return -1;
    if (d == 0) {
      empty = true;
      continue;
    }
    if (n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return empty ? 0 : n;
}

std::string ShapeStr(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ",";
    out += std::to_string(s[i]);
  }
  return out + "]";
}

Buffer::Buffer(size_t nbytes) : size_(nbytes) {
  if (nbytes > std::numeric_limits<size_t>::max() - 64)
    throw MemoryBudgetError("a buffer of " + std::to_string(nbytes) + " bytes cannot be allocated");
  Reserve(nbytes, "a buffer");
  // aligned_alloc needs a size that is a multiple of the alignment; never 0.
  size_t alloc = (nbytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(64, alloc));
  if (!data_) {
    g_in_use.fetch_sub(nbytes);
    throw MemoryBudgetError("the system refused a buffer of " + BytesText(static_cast<double>(nbytes)));
  }
  std::memset(data_, 0, alloc);
}

Buffer::~Buffer() {
  std::free(data_);
  g_in_use.fetch_sub(size_);
}

Tensor::Tensor(DType dtype, Shape shape) : dtype_(dtype), shape_(std::move(shape)) {
  numel_ = ShapeNumel(shape_);
  const size_t elem = dtype_ == DType::String ? sizeof(std::string) : DTypeSize(dtype_);
  if (numel_ < 0 || (elem > 0 && static_cast<uint64_t>(numel_) > MemoryBudget() / elem))
    throw MemoryBudgetError("a " + std::string(DTypeName(dtype_)) + " tensor of shape " +
                            ShapeStr(shape_) +
                            (numel_ < 0 ? std::string(" (a negative dim, or more elements than int64 counts)")
                                        : " (" + BytesText(static_cast<double>(numel_) * elem) + ")") +
                            " is over the memory budget of " +
                            BytesText(static_cast<double>(MemoryBudget())) +
                            " (ASRC_MEMORY_BUDGET sets it)");
  if (dtype_ == DType::String) {
    strings.assign(static_cast<size_t>(numel_), std::string());
    return;
  }
  buffer_ = std::make_shared<Buffer>(nbytes());
}

Tensor Tensor::Wrap(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = ShapeNumel(t.shape_);
  assert(t.numel_ >= 0);
  assert(buffer && offset + t.nbytes() <= buffer->size());
  t.buffer_ = std::move(buffer);
  t.offset_ = offset;
  return t;
}

Tensor Tensor::Scalar(float v) {
  Tensor t(DType::Float32, {});
  *t.data<float>() = v;
  return t;
}

Tensor Tensor::ScalarInt64(int64_t v) {
  Tensor t(DType::Int64, {});
  *t.data<int64_t>() = v;
  return t;
}

Tensor Tensor::Sequence(DType elem, std::vector<Tensor> elements) {
  Tensor t;
  t.kind_ = ValueKind::Sequence;
  t.dtype_ = elem;
  t.elements_ = std::make_shared<const std::vector<Tensor>>(std::move(elements));
  return t;
}

Tensor Tensor::Optional(DType elem, const Tensor* value) {
  Tensor t;
  t.kind_ = ValueKind::Optional;
  t.dtype_ = elem;
  t.elements_ = std::make_shared<const std::vector<Tensor>>(
      value ? std::vector<Tensor>{*value} : std::vector<Tensor>{});
  return t;
}

const std::vector<Tensor>& Tensor::elements() const {
  static const std::vector<Tensor> kNone;
  return elements_ ? *elements_ : kNone;
}

const char* ValueKindName(ValueKind k) {
  switch (k) {
    case ValueKind::Tensor: return "tensor";
    case ValueKind::Sequence: return "sequence";
    case ValueKind::Optional: return "optional";
    default: return "map/sparse";
  }
}

Tensor Tensor::Reshaped(Shape shape) const {
  Tensor t = *this;
  int64_t n = ShapeNumel(shape);
  assert(n == numel_);
  (void)n;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::Clone() const {
  if (!defined()) return Tensor();
  if (!is_tensor()) {
    std::vector<Tensor> copies;
    for (const Tensor& e : elements()) copies.push_back(e.Clone());
    Tensor t = *this;
    t.elements_ = std::make_shared<const std::vector<Tensor>>(std::move(copies));
    return t;
  }
  Tensor t(dtype_, shape_);
  if (dtype_ == DType::String) {
    t.strings = strings;
  } else if (nbytes() > 0) {
    std::memcpy(t.raw(), raw(), nbytes());
  }
  return t;
}

namespace {
float FloatFromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
uint32_t FloatBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}
}  // namespace

float HalfToFloat(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      mant &= 0x3ff;
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return FloatFromBits(bits);
}

uint16_t FloatToHalf(float f) {
  const uint32_t x = FloatBits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t exp = (x >> 23) & 0xff;
  uint32_t mant = x & 0x7fffff;
  if (exp == 0xff) {  // inf / nan (keep nan quiet)
    return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 | (mant >> 13) : 0));
  }
  int32_t e = static_cast<int32_t>(exp) - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);  // overflow -> inf
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);  // underflow -> signed zero
    // subnormal half: shift in the implicit bit, round to nearest even
    mant |= 0x800000;
    uint32_t shift = static_cast<uint32_t>(14 - e);
    uint32_t half_mant = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half_mant & 1))) ++half_mant;
    return static_cast<uint16_t>(sign | half_mant);
  }
  uint32_t half = sign | (static_cast<uint32_t>(e) << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) ++half;  // may carry into exponent: correct
  return static_cast<uint16_t>(half);
}

// bfloat16 is the top half of the float's bits; rounding to nearest even, as ONNX Runtime and the
// Cast spec do (NaN stays a quiet NaN).
float Bf16ToFloat(uint16_t h) { return FloatFromBits(static_cast<uint32_t>(h) << 16); }

uint16_t FloatToBf16(float f) {
  const uint32_t u = FloatBits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

}  // namespace asrc::ir
