// Helpers shared by the ONNX tests: read a proto file, normalize a ModelProto's storage form,
// compare two ModelProtos semantically.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include <google/protobuf/util/message_differencer.h>
#include <onnx/onnx_pb.h>

namespace asrc_test {

template <class M>
bool ReadProto(const std::string& path, M* m) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return in.good() && m->ParseFromString(ss.str());
}

// Re-encodes a tensor's typed fields (float_data, int32_data, ...) as little-endian raw_data,
// independently of asrc's importer.
inline void NormalizeTensor(onnx::TensorProto* t) {
  if (t->data_type() == onnx::TensorProto::STRING || t->data_location() == onnx::TensorProto::EXTERNAL) return;
  std::string raw = t->raw_data();
  auto put = [&](const void* p, size_t n) { raw.append(static_cast<const char*>(p), n); };
  if (!t->has_raw_data() || raw.empty()) {
    switch (t->data_type()) {
      case onnx::TensorProto::FLOAT: case onnx::TensorProto::COMPLEX64:
        for (float v : t->float_data()) put(&v, 4);
        break;
      case onnx::TensorProto::INT32:
        for (int32_t v : t->int32_data()) put(&v, 4);
        break;
      case onnx::TensorProto::INT16: case onnx::TensorProto::UINT16:
      case onnx::TensorProto::FLOAT16: case onnx::TensorProto::BFLOAT16:
        for (int32_t v : t->int32_data()) { uint16_t x = static_cast<uint16_t>(v); put(&x, 2); }
        break;
      case onnx::TensorProto::INT8: case onnx::TensorProto::UINT8:
        for (int32_t v : t->int32_data()) { uint8_t x = static_cast<uint8_t>(v); put(&x, 1); }
        break;
      case onnx::TensorProto::BOOL:
        for (int32_t v : t->int32_data()) { uint8_t x = v != 0; put(&x, 1); }
        break;
      case onnx::TensorProto::INT64:
        for (int64_t v : t->int64_data()) put(&v, 8);
        break;
      case onnx::TensorProto::DOUBLE: case onnx::TensorProto::COMPLEX128:
        for (double v : t->double_data()) put(&v, 8);
        break;
      case onnx::TensorProto::UINT32:
        for (uint64_t v : t->uint64_data()) { uint32_t x = static_cast<uint32_t>(v); put(&x, 4); }
        break;
      case onnx::TensorProto::UINT64:
        for (uint64_t v : t->uint64_data()) put(&v, 8);
        break;
      default: break;
    }
  }
  t->clear_float_data();
  t->clear_int32_data();
  t->clear_int64_data();
  t->clear_double_data();
  t->clear_uint64_data();
  t->set_raw_data(raw);
}

inline void NormalizeGraph(onnx::GraphProto* g);

inline void NormalizeAttribute(onnx::AttributeProto* a) {
  using A = onnx::AttributeProto;
  if (!a->has_type()) {
    if (a->has_f()) a->set_type(A::FLOAT);
    else if (a->has_i()) a->set_type(A::INT);
    else if (a->has_s()) a->set_type(A::STRING);
    else if (a->has_t()) a->set_type(A::TENSOR);
    else if (a->has_g()) a->set_type(A::GRAPH);
    else if (a->floats_size()) a->set_type(A::FLOATS);
    else if (a->ints_size()) a->set_type(A::INTS);
    else if (a->strings_size()) a->set_type(A::STRINGS);
    else if (a->tensors_size()) a->set_type(A::TENSORS);
    else if (a->graphs_size()) a->set_type(A::GRAPHS);
  }
  if (a->has_t()) NormalizeTensor(a->mutable_t());
  for (auto& t : *a->mutable_tensors()) NormalizeTensor(&t);
  if (a->has_g()) NormalizeGraph(a->mutable_g());
  for (auto& g : *a->mutable_graphs()) NormalizeGraph(&g);
}

inline void NormalizeGraph(onnx::GraphProto* g) {
  for (auto& t : *g->mutable_initializer()) NormalizeTensor(&t);
  for (auto& n : *g->mutable_node())
    for (auto& a : *n.mutable_attribute()) NormalizeAttribute(&a);
}

inline void Normalize(onnx::ModelProto* m) {
  if (m->has_graph()) NormalizeGraph(m->mutable_graph());
}

inline bool Equivalent(const onnx::ModelProto& a, const onnx::ModelProto& b, std::string* diff) {
  google::protobuf::util::MessageDifferencer d;
  d.set_message_field_comparison(google::protobuf::util::MessageDifferencer::EQUIVALENT);
  d.TreatAsSet(onnx::GraphProto::descriptor()->FindFieldByName("value_info"));
  d.ReportDifferencesToString(diff);
  return d.Compare(a, b);
}

}  // namespace asrc_test
