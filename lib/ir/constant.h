// The tensor behind a value when it is a constant: an initializer, or the output of a Constant
// node with a tensor `value`. (Header-only so that any library over asrc_ir can use it.)
#pragma once

#include "ir/graph.h"

namespace asrc::ir {

inline const Tensor* ConstantOf(const Value* v) {
  if (!v) return nullptr;
  if (v->initializer) return &*v->initializer;
  const Node* p = v->producer;
  if (p && p->op_type == "Constant" && p->domain.empty()) {
    const Attribute* a = p->attr("value");
    if (a && a->kind == Attribute::Kind::Tensor) return &a->t;
  }
  return nullptr;
}

}  // namespace asrc::ir
