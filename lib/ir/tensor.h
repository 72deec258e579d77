// Tensors: a dtype, a shape and a (possibly shared) buffer of bytes.
// Two tensors may share one Buffer (weight sharing/tying across graphs of a bundle); size
// accounting counts each Buffer once. Buffers are 64-byte aligned for SIMD kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

namespace asrc::ir {

// Values are ONNX's TensorProto.DataType codes, so import/export is a cast.
enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  Uint8 = 2,
  Int8 = 3,
  Uint16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  Uint32 = 12,
  Uint64 = 13,
  Complex64 = 14,
  Complex128 = 15,
  BFloat16 = 16,
};

// Bytes per element; 0 for String and Undefined.
size_t DTypeSize(DType t);
// "float32", "int8", ...
const char* DTypeName(DType t);
// true for the codes above.
bool DTypeKnown(int32_t code);

using Shape = std::vector<int64_t>;

// What a value is: a tensor, or one of ONNX's non-tensor types. Sequence and Optional values run
// (see Tensor::Sequence); Other (maps, sparse tensors) the IR carries as opaque types only.
enum class ValueKind : uint8_t { Tensor = 0, Sequence = 1, Optional = 2, Other = 3 };
const char* ValueKindName(ValueKind k);  // "tensor", "sequence", "optional", "map/sparse"

// Element count of a shape; returns -1 when a dim is negative or the product of its nonzero dims
// overflows int64 (so every partial product over the dims of a tensor that exists fits in int64).
int64_t ShapeNumel(const Shape& s);
std::string ShapeStr(const Shape& s);  // "[2,3,4]"

// The memory budget: bytes live in Buffers (and String tensors' elements), process-wide. An
// allocation that would go over it, or a shape whose byte count overflows, throws
// MemoryBudgetError (a std::bad_alloc whose what() says the size and the budget) instead of
// asserting, aborting or asking the system for terabytes; runtime::Session turns it into an error
// naming the node. Default: the machine's physical memory; ASRC_MEMORY_BUDGET in the environment
// (bytes, or with a K, M, G or T suffix) or SetMemoryBudget overrides it.
class MemoryBudgetError : public std::bad_alloc {
 public:
  explicit MemoryBudgetError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};
void SetMemoryBudget(size_t bytes);  // 0: back to the default
size_t MemoryBudget();
size_t MemoryInUse();
// "1.5 GiB", "12 MiB", "300 B": sizes in budget messages.
std::string BytesText(double bytes);

// A 64-byte aligned, owned block of bytes.
class Buffer {
 public:
  explicit Buffer(size_t nbytes);  // zero-filled
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  // Allocates a zero-filled tensor. For String, fills `strings` with numel empty strings.
  Tensor(DType dtype, Shape shape);
  // Wraps an existing buffer (shared, not copied); buffer->size() must be >= nbytes().
  static Tensor Wrap(DType dtype, Shape shape, std::shared_ptr<Buffer> buffer, size_t offset = 0);
  template <class T>
  static Tensor FromVector(DType dtype, Shape shape, const std::vector<T>& v) {
    Tensor t(dtype, std::move(shape));
    if (t.nbytes() > 0) std::memcpy(t.raw(), v.data(), t.nbytes());  // v.data() may be null
    return t;
  }
  static Tensor Scalar(float v);
  static Tensor ScalarInt64(int64_t v);

  // ONNX sequence and optional values travel as Tensors too, so sessions, kernels and feeds
  // carry one value type. Such a value's kind() is not Tensor; it has no buffer, shape [] and
  // numel() 0 (the session hands it only to kernels that take it), and elements() lists what it
  // holds: a sequence its tensors in order (possibly none), an optional nothing (None) or one
  // value (a tensor or a sequence). dtype() is the element dtype, Undefined where unknown (an
  // empty sequence or a None read from a file). Elements are shared, never written.
  static Tensor Sequence(DType elem, std::vector<Tensor> elements);
  static Tensor Optional(DType elem, const Tensor* value);  // value null: None
  ValueKind kind() const { return kind_; }
  bool is_tensor() const { return kind_ == ValueKind::Tensor; }
  const std::vector<Tensor>& elements() const;  // empty for tensors

  bool defined() const { return dtype_ != DType::Undefined || kind_ != ValueKind::Tensor; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const { return shape_[i < 0 ? i + shape_.size() : i]; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * DTypeSize(dtype_); }

  template <class T> T* data() { return reinterpret_cast<T*>(raw()); }
  template <class T> const T* data() const { return reinterpret_cast<const T*>(raw()); }
  uint8_t* raw() { return buffer_ ? buffer_->data() + offset_ : nullptr; }
  const uint8_t* raw() const { return buffer_ ? buffer_->data() + offset_ : nullptr; }

  const std::shared_ptr<Buffer>& buffer() const { return buffer_; }
  size_t offset() const { return offset_; }
  bool SharesBufferWith(const Tensor& o) const { return buffer_ && buffer_ == o.buffer_; }

  // Same buffer, new shape with the same element count (Reshape without a copy).
  Tensor Reshaped(Shape shape) const;
  // Deep copy into a fresh buffer.
  Tensor Clone() const;

  // Elements of a String tensor (ONNX string tensors; the buffer is unused).
  std::vector<std::string> strings;

 private:
  DType dtype_ = DType::Undefined;
  ValueKind kind_ = ValueKind::Tensor;
  std::shared_ptr<const std::vector<Tensor>> elements_;  // sequence/optional only
  Shape shape_;
  int64_t numel_ = 0;
  std::shared_ptr<Buffer> buffer_;
  size_t offset_ = 0;
};

// IEEE half <-> float conversions.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
// bfloat16 <-> float (round to nearest even; NaN stays a quiet NaN).
float Bf16ToFloat(uint16_t h);
uint16_t FloatToBf16(float f);

}  // namespace asrc::ir
