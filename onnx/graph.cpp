// ModelProto encoding, field numbers from onnx.proto (ONNX 1.12; unchanged since IR version 3).
#include "onnx/graph.hpp"

#include <variant>

#include "autograd/dtype.hpp"
#include "onnx/proto.hpp"

namespace xg::onnx {

namespace {

using proto::Writer;

// TensorProto.DataType
int64_t data_type(Dtype d) {
  switch (d) {
    case Dtype::f32: return 1;   // FLOAT
    case Dtype::i64: return 7;   // INT64
    case Dtype::f64: return 11;  // DOUBLE
  }
  return 0;
}

Writer tensor(const Initializer& init) {
  Writer t;
  for (int64_t d : init.value.shape()) t.varint_field(1, d);  // dims
  t.varint_field(2, data_type(init.value.dtype()));           // data_type
  t.bytes_field(8, init.name);                                 // name
  const auto* data = static_cast<const char*>(init.value.impl().storage->data());
  t.bytes_field(9, {data, static_cast<size_t>(init.value.numel()) * dtype_size(init.value.dtype())});  // raw_data
  return t;
}

Writer attribute(const std::string& name, const trace::Attr& value) {
  Writer a;
  a.bytes_field(1, name);
  // AttributeProto.type: FLOAT 1, INT 2, STRING 3, INTS 7; the value goes in f 2, i 3, s 4 or ints 8.
  if (const auto* i = std::get_if<int64_t>(&value)) {
    a.varint_field(20, 2);
    a.varint_field(3, *i);
  } else if (const auto* f = std::get_if<double>(&value)) {
    a.varint_field(20, 1);
    a.float_field(2, static_cast<float>(*f));
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    a.varint_field(20, 3);
    a.bytes_field(4, *s);
  } else {
    a.varint_field(20, 7);
    for (int64_t v : std::get<std::vector<int64_t>>(value)) a.varint_field(8, v);
  }
  return a;
}

Writer node(const Node& n) {
  Writer w;
  for (const std::string& i : n.inputs) w.bytes_field(1, i);
  for (const std::string& o : n.outputs) w.bytes_field(2, o);
  w.bytes_field(3, n.name);
  w.bytes_field(4, n.op_type);
  for (const auto& [k, v] : n.attrs) w.message_field(5, attribute(k, v));
  return w;
}

Writer value_info(const ValueInfo& v) {
  Writer shape;  // TensorShapeProto: repeated Dimension dim = 1 {dim_value = 1 | dim_param = 2}
  for (size_t i = 0; i < v.shape.size(); ++i) {
    Writer dim;
    if (i == 0 && v.dynamic_batch) dim.bytes_field(2, "N");
    else dim.varint_field(1, v.shape[i]);
    shape.message_field(1, dim);
  }
  Writer tensor_type;  // TypeProto.Tensor: elem_type = 1, shape = 2
  tensor_type.varint_field(1, data_type(v.dtype));
  tensor_type.message_field(2, shape);
  Writer type;  // TypeProto: tensor_type = 1
  type.message_field(1, tensor_type);
  Writer w;  // ValueInfoProto: name = 1, type = 2
  w.bytes_field(1, v.name);
  w.message_field(2, type);
  return w;
}

}  // namespace

std::string serialize(const Model& model) {
  const Graph& g = model.graph;
  Writer graph;  // GraphProto: node 1, name 2, initializer 5, input 11, output 12
  for (const Node& n : g.nodes) graph.message_field(1, node(n));
  graph.bytes_field(2, g.name);
  for (const Initializer& i : g.initializers) graph.message_field(5, tensor(i));
  for (const ValueInfo& v : g.inputs) graph.message_field(11, value_info(v));
  for (const ValueInfo& v : g.outputs) graph.message_field(12, value_info(v));

  Writer opset;  // OperatorSetIdProto: domain 1 ("" is ai.onnx), version 2
  opset.bytes_field(1, "");
  opset.varint_field(2, model.opset);
  Writer m;  // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8
  m.varint_field(1, model.ir_version);
  m.bytes_field(2, "xgrad");
  m.bytes_field(3, "0.1.0");
  m.message_field(7, graph);
  m.message_field(8, opset);
  return m.bytes();
}

}  // namespace xg::onnx
