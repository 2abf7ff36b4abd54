#include "core/npy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace wbs {
namespace {

namespace fs = std::filesystem;

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("wbs_npy_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void WriteBytes(const std::string& path, const std::string& bytes) {
    std::ofstream(path, std::ios::binary) << bytes;
  }
  std::string ReadBytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }
  // A file laid out as numpy lays it out: magic, version, little-endian
  // header length (2 bytes for 1.0, 4 for 2.0), dict text, data.
  static std::string NpyBytes(int major, const std::string& dict, const std::string& data) {
    std::string s("\x93NUMPY", 6);
    s += static_cast<char>(major);
    s += '\0';
    std::string header = dict + "\n";
    uint32_t n = static_cast<uint32_t>(header.size());
    for (int i = 0; i < (major == 1 ? 2 : 4); ++i) s += static_cast<char>((n >> (8 * i)) & 0xff);
    return s + header + data;
  }
  fs::path dir_;
};

template <typename T>
void ExpectRoundTrip(const std::string& path, Shape shape, std::vector<T> values) {
  Tensor t = Tensor::FromVector<T>(shape, values);
  ASSERT_TRUE(WriteNpy(t, path).ok());
  Result<Tensor> r = ReadNpy(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->Identical(t)) << r->Describe() << " vs " << t.Describe();
}

TEST_F(NpyTest, RoundTripsEveryListedDType) {
  ExpectRoundTrip<float>(Path("f32.npy"), {2, 3}, {1.5f, -2.f, 0.f, 3.25f, -0.f, 1e30f});
  ExpectRoundTrip<double>(Path("f64.npy"), {3}, {1e-300, -2.5, 7.0});
  ExpectRoundTrip<int64_t>(Path("i64.npy"), {2, 1, 2}, {INT64_MIN, -1, 0, INT64_MAX});
  ExpectRoundTrip<int32_t>(Path("i32.npy"), {4}, {INT32_MIN, -7, 0, INT32_MAX});
  ExpectRoundTrip<int8_t>(Path("i8.npy"), {3}, {-128, 0, 127});
  ExpectRoundTrip<uint8_t>(Path("u8.npy"), {1, 3}, {0, 128, 255});
  ExpectRoundTrip<bool>(Path("b1.npy"), {2, 2}, {true, false, false, true});
}

TEST_F(NpyTest, RoundTripsScalarsAndEmptyTensors) {
  ExpectRoundTrip<float>(Path("scalar.npy"), {}, {42.f});
  ExpectRoundTrip<float>(Path("empty.npy"), {0, 5}, {});
}

TEST_F(NpyTest, WritesTheHeaderNumpyWrites) {
  ASSERT_TRUE(WriteNpy(Tensor::FromVector<float>({5}, {1, 2, 3, 4, 5}), Path("a.npy")).ok());
  std::string bytes = ReadBytes(Path("a.npy"));
  ASSERT_GE(bytes.size(), 10u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<unsigned char>(bytes[9])
                                                                 << 8;
  // Data starts 64-byte aligned, and the header ends with a newline.
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes.size(), 10 + header_len + 5 * sizeof(float));
  std::string header = bytes.substr(10, header_len);
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
  EXPECT_NE(header.find("'shape': (5,)"), std::string::npos) << header;
  EXPECT_NE(header.find("'fortran_order': False"), std::string::npos) << header;
}

TEST_F(NpyTest, ReadsVersion2HeadersAndAnyKeyOrder) {
  std::string data(8, '\0');
  int32_t v[2] = {7, -9};
  std::memcpy(data.data(), v, 8);
  WriteBytes(Path("v2.npy"),
             NpyBytes(2, "{\"shape\": (2,), 'fortran_order': False, 'descr': '<i4'}", data));
  Result<Tensor> r = ReadNpy(Path("v2.npy"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->dtype(), DType::kI32);
  EXPECT_EQ(r->shape(), Shape({2}));
  EXPECT_EQ(r->ToVector<int32_t>(), std::vector<int32_t>({7, -9}));
}

TEST_F(NpyTest, NonzeroBoolBytesReadAsTrue) {
  WriteBytes(Path("b.npy"), NpyBytes(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                                     std::string("\x00\x01\x07", 3)));
  Result<Tensor> r = ReadNpy(Path("b.npy"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ToVector<int>(), std::vector<int>({0, 1, 1}));
}

TEST_F(NpyTest, FortranOrderIsUnimplemented) {
  WriteBytes(Path("f.npy"), NpyBytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                                     std::string(4, '\0')));
  Result<Tensor> r = ReadNpy(Path("f.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("fortran_order"), std::string::npos);
}

TEST_F(NpyTest, BigEndianAndUnknownDTypesAreUnimplemented) {
  for (const char* descr : {">f4", "<c8", "|O"}) {
    WriteBytes(Path("e.npy"), NpyBytes(1,
                                       std::string("{'descr': '") + descr +
                                           "', 'fortran_order': False, 'shape': (1,), }",
                                       std::string(8, '\0')));
    Result<Tensor> r = ReadNpy(Path("e.npy"));
    ASSERT_FALSE(r.ok()) << descr;
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << descr;
    EXPECT_NE(r.status().message().find(descr), std::string::npos) << r.status().message();
  }
}

TEST_F(NpyTest, TruncatedDataIsAParseErrorNamingTheFile) {
  ASSERT_TRUE(WriteNpy(Tensor::FromVector<float>({4}, {1, 2, 3, 4}), Path("t.npy")).ok());
  std::string bytes = ReadBytes(Path("t.npy"));
  // Cut inside the data, inside the header, and inside the preamble.
  for (size_t keep : {bytes.size() - 1, size_t{40}, size_t{9}}) {
    WriteBytes(Path("cut.npy"), bytes.substr(0, keep));
    Result<Tensor> r = ReadNpy(Path("cut.npy"));
    ASSERT_FALSE(r.ok()) << keep;
    EXPECT_EQ(r.status().code(), StatusCode::kParseError) << r.status().ToString();
    EXPECT_NE(r.status().message().find("cut.npy"), std::string::npos) << r.status().message();
  }
}

TEST_F(NpyTest, GarbageIsAParseError) {
  const std::string dicts[] = {
      "not a dict",
      "{'descr': '<f4', 'fortran_order': False}",                           // no shape
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }",          // bad bool
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -2), }",       // negative dim
      "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }",  // unknown key
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }",
      "{'descr': '<f4, 'fortran_order': False, 'shape': (1,), }",  // unterminated
  };
  for (const std::string& d : dicts) {
    WriteBytes(Path("g.npy"), NpyBytes(1, d, std::string(4, '\0')));
    Result<Tensor> r = ReadNpy(Path("g.npy"));
    ASSERT_FALSE(r.ok()) << d;
    EXPECT_EQ(r.status().code(), StatusCode::kParseError) << d << ": " << r.status().ToString();
  }
  WriteBytes(Path("magic.npy"), "PK\x03\x04 this is a zip");
  EXPECT_EQ(ReadNpy(Path("magic.npy")).status().code(), StatusCode::kParseError);
  // Trailing bytes after the data mean the header's shape is wrong.
  WriteBytes(Path("long.npy"),
             NpyBytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                      std::string(8, '\0')));
  EXPECT_EQ(ReadNpy(Path("long.npy")).status().code(), StatusCode::kParseError);
}

TEST_F(NpyTest, MissingFileIsNotFound) {
  Result<Tensor> r = ReadNpy(Path("nope.npy"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope.npy"), std::string::npos);
}

TEST_F(NpyTest, FailedWriteLeavesNoFileBehind) {
  // The target's directory does not exist: no temporary file, no output.
  Status st = WriteNpy(Tensor::FromVector<float>({1}, {1}), Path("missing_dir/out.npy"));
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_FALSE(fs::exists(Path("missing_dir")));
  // An existing file is replaced whole, and no temporaries are left next to it.
  ASSERT_TRUE(WriteNpy(Tensor::FromVector<float>({3}, {1, 2, 3}), Path("x.npy")).ok());
  ASSERT_TRUE(WriteNpy(Tensor::FromVector<int8_t>({1}, {5}), Path("x.npy")).ok());
  EXPECT_EQ(ReadNpy(Path("x.npy"))->dtype(), DType::kI8);
  int files = 0;
  for (auto& e : fs::directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
}

}  // namespace
}  // namespace wbs
