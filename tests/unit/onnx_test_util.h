// Helpers for the ONNX import/export tests: small models built directly as
// onnx::ModelProto (no python, no fixture files) and a scratch directory.
#pragma once

#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace wbs::onnxio::testing {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 17) {
    model_.set_ir_version(8);
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
    model_.mutable_graph()->set_name("test_graph");
  }

  ::onnx::ModelProto& model() { return model_; }
  ::onnx::GraphProto* graph() { return model_.mutable_graph(); }
  std::string Bytes() const { return model_.SerializeAsString(); }

  // dims < 0 become a dim_param "N".
  static void SetType(::onnx::ValueInfoProto* vi, const std::string& name, int32_t elem_type,
                      const std::vector<int64_t>& dims) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem_type);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      if (d >= 0)
        shape->add_dim()->set_dim_value(d);
      else
        shape->add_dim()->set_dim_param("N");
    }
  }
  void Input(const std::string& name, const std::vector<int64_t>& dims,
             int32_t elem_type = ::onnx::TensorProto::FLOAT) {
    SetType(graph()->add_input(), name, elem_type, dims);
  }
  void Output(const std::string& name, const std::vector<int64_t>& dims,
              int32_t elem_type = ::onnx::TensorProto::FLOAT) {
    SetType(graph()->add_output(), name, elem_type, dims);
  }
  ::onnx::NodeProto* Node(const std::string& op, std::vector<std::string> inputs,
                          std::vector<std::string> outputs, const std::string& name = "") {
    auto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto& i : inputs) n->add_input(i);
    for (auto& o : outputs) n->add_output(o);
    return n;
  }
  // An f32 initializer stored in float_data.
  ::onnx::TensorProto* FloatInit(const std::string& name, const std::vector<int64_t>& dims,
                                 const std::vector<float>& values) {
    auto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(::onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : values) t->add_float_data(v);
    return t;
  }
  static void FloatAttr(::onnx::NodeProto* n, const std::string& name, float v) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(::onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }

 private:
  ::onnx::ModelProto model_;
};

// A fresh directory, removed with its contents at destruction.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "wbs_onnx_test_XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }
  // Names of all entries, sorted.
  std::vector<std::string> List() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace wbs::onnxio::testing
