// TensorProto files (the backend tests' input_N.pb / output_N.pb).
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <filesystem>
#include <fstream>

#include "onnx/model_io.h"
#include "tests/unit/onnx_test_util.h"

namespace wbs::onnxio {
namespace {

using testing::ScratchDir;

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

std::string WriteProto(const ScratchDir& dir, const ::onnx::TensorProto& p) {
  std::string path = dir.File("t.pb");
  WriteBytes(path, p.SerializeAsString());
  return path;
}

TEST(OnnxTensorProto, WriteReadRoundTrip) {
  ScratchDir dir;
  const std::vector<Tensor> tensors = {
      Tensor::FromVector<float>({2, 3}, {1.5f, -2.0f, 0.0f, 3.25f, 1e-30f, -7.0f}),
      Tensor::FromVector<int64_t>({4}, {0, -1, int64_t{1} << 40, 9}),
      Tensor::FromVector<uint8_t>({2, 2}, {0, 1, 254, 255}),
      Tensor::FromVector<bool>({3}, {true, false, true}),
      Tensor::Scalar<float>(42.0f),
      Tensor(DType::kF32, {0, 3}),
  };
  for (const Tensor& t : tensors) {
    const std::string path = dir.File("t.pb");
    ASSERT_TRUE(WriteTensorProtoFile(t, path).ok()) << t.Describe();
    Result<Tensor> back = ReadTensorProtoFile(path);
    ASSERT_TRUE(back.ok()) << t.Describe() << ": " << back.status().ToString();
    EXPECT_TRUE(back->Identical(t)) << t.Describe() << " came back as " << back->Describe();
  }
  EXPECT_EQ(dir.List(), std::vector<std::string>({"t.pb"}));  // no temp files left
}

TEST(OnnxTensorProto, WrittenFileIsAStandardTensorProto) {
  ScratchDir dir;
  const std::string path = dir.File("t.pb");
  ASSERT_TRUE(WriteTensorProtoFile(Tensor::FromVector<int64_t>({2}, {7, -8}), path).ok());
  std::ifstream in(path, std::ios::binary);
  ::onnx::TensorProto p;
  ASSERT_TRUE(p.ParseFromIstream(&in));
  EXPECT_EQ(p.data_type(), ::onnx::TensorProto::INT64);
  ASSERT_EQ(p.dims_size(), 1);
  EXPECT_EQ(p.dims(0), 2);
  ASSERT_EQ(p.raw_data().size(), 16u);
  int64_t v[2];
  std::memcpy(v, p.raw_data().data(), 16);
  EXPECT_EQ(v[0], 7);
  EXPECT_EQ(v[1], -8);
}

TEST(OnnxTensorProto, ReadsTypedFields) {
  ScratchDir dir;
  {
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::FLOAT);
    p.add_dims(3);
    for (float f : {0.5f, -1.0f, 8.0f}) p.add_float_data(f);
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->dtype(), DType::kF32);
    EXPECT_EQ(t->ToVector<float>(), std::vector<float>({0.5f, -1.0f, 8.0f}));
  }
  {
    // bool and u8 travel in int32_data; bool is normalised to 0/1.
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::BOOL);
    p.add_dims(3);
    for (int v : {0, 5, 1}) p.add_int32_data(v);
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->dtype(), DType::kBool);
    EXPECT_EQ(t->ToVector<int>(), std::vector<int>({0, 1, 1}));
  }
  {
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::UINT8);
    p.add_dims(2);
    p.add_int32_data(200);
    p.add_int32_data(3);
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->ToVector<int>(), std::vector<int>({200, 3}));
  }
  {
    // f16 bit patterns in int32_data are kept as raw 16-bit values.
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::FLOAT16);
    p.add_dims(2);
    p.add_int32_data(0x3C00);  // 1.0
    p.add_int32_data(0xC000);  // -2.0
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->dtype(), DType::kF16);
    const uint16_t* bits = static_cast<const uint16_t*>(t->raw());
    EXPECT_EQ(bits[0], 0x3C00);
    EXPECT_EQ(bits[1], 0xC000);
  }
  {
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::UINT64);
    p.add_uint64_data(~uint64_t{0});
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->rank(), 0);
    EXPECT_EQ(t->ToVector<uint64_t>(), std::vector<uint64_t>({~uint64_t{0}}));
  }
  {
    ::onnx::TensorProto p;
    p.set_data_type(::onnx::TensorProto::DOUBLE);
    p.add_dims(1);
    p.add_double_data(0.1);
    Result<Tensor> t = ReadTensorProtoFile(WriteProto(dir, p));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    EXPECT_EQ(t->ToVector<double>(), std::vector<double>({0.1}));
  }
}

TEST(OnnxTensorProto, ReadsBackendTestData) {
  const std::string path =
      "/usr/share/libonnx-testdata/data/node/test_add/test_data_set_0/input_0.pb";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing (libonnx-testdata)";
  Result<Tensor> t = ReadTensorProtoFile(path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->dtype(), DType::kF32);
  EXPECT_EQ(t->shape(), Shape({3, 4, 5}));
}

TEST(OnnxTensorProto, BadFiles) {
  ScratchDir dir;
  const std::string path = dir.File("bad.pb");
  WriteBytes(path, "");
  EXPECT_EQ(ReadTensorProtoFile(path).status().message(),
            path + ": not a valid TensorProto (empty file)");

  WriteBytes(path, std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11));
  EXPECT_EQ(ReadTensorProtoFile(path).status().code(), StatusCode::kParseError);

  ::onnx::TensorProto p;
  p.set_name("t");
  p.set_data_type(::onnx::TensorProto::FLOAT);
  p.add_dims(2);
  p.set_raw_data(std::string(7, '\0'));
  Status st = ReadTensorProtoFile(WriteProto(dir, p)).status();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), dir.File("t.pb") + ": tensor 't': raw_data has 7 bytes, f32[2] needs 8");

  p.set_raw_data(std::string(8, '\0'));
  p.add_float_data(1.0f);
  st = ReadTensorProtoFile(WriteProto(dir, p)).status();
  EXPECT_EQ(st.message(), dir.File("t.pb") + ": tensor 't': has both raw_data and typed data");

  p.Clear();
  p.set_data_type(::onnx::TensorProto::COMPLEX64);
  st = ReadTensorProtoFile(WriteProto(dir, p)).status();
  EXPECT_EQ(st.code(), StatusCode::kUnimplemented);
  EXPECT_EQ(st.message(), dir.File("t.pb") + ": element type COMPLEX64 is not supported");

  EXPECT_EQ(ReadTensorProtoFile(dir.File("absent.pb")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ReadTensorProtoFromBytes("\x0a", "in.pb").status().message(),
            "in.pb: not a valid TensorProto (protobuf parse failed)");
  EXPECT_EQ(WriteTensorProtoFile(Tensor(), dir.File("u.pb")).code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.File("u.pb")));
}

}  // namespace
}  // namespace wbs::onnxio
