#include <unistd.h>

#include <cctype>
#include <charconv>
#include <climits>
#include <filesystem>

#include "cli/command.h"
#include "onnx/model_io.h"

namespace wbs::cli {

Result<std::pair<std::string, std::string>> SplitNameValue(const std::string& option,
                                                           const std::string& text) {
  size_t eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    return InvalidArgument("{} '{}': expected NAME=VALUE", option, text);
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

Result<std::map<std::string, Shape>> ParseInputShapes(const std::vector<std::string>& specs) {
  std::map<std::string, Shape> shapes;
  for (const std::string& spec : specs) {
    auto bad = [&] {
      return InvalidArgument(
          "--input-shape '{}': expected NAME=D0,D1,... with dims >= 0 "
          "(e.g. input=1,3,224,224)",
          spec);
    };
    auto nv = SplitNameValue("--input-shape", spec);
    if (!nv.ok()) return bad();
    const auto& [name, dims] = *nv;
    Shape shape;
    for (size_t start = 0;;) {
      size_t comma = dims.find(',', start);
      size_t stop = comma == std::string::npos ? dims.size() : comma;
      int64_t d = 0;
      auto [ptr, ec] = std::from_chars(dims.data() + start, dims.data() + stop, d);
      if (start == stop || ec != std::errc() || ptr != dims.data() + stop || d < 0) return bad();
      shape.push_back(d);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (!shapes.emplace(name, shape).second)
      return InvalidArgument("--input-shape: input '{}' is given twice", name);
  }
  return shapes;
}

Result<std::unique_ptr<ir::Graph>> LoadModel(const std::string& path,
                                             const std::map<std::string, Shape>& input_shapes) {
  onnxio::ImportOptions options;
  options.input_shapes = input_shapes;
  return onnxio::ImportModel(path, options);
}

std::string WithThousands(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string SanitizeFileName(const std::string& name) {
  std::string out = name;
  for (char& c : out)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') c = '_';
  if (out.empty() || out == "." || out == "..") out = "_" + out;
  return out;
}

Status EnsureParentDirectory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return IoError("{}: cannot create directory: {}", parent.string(), ec.message());
  return Status::Ok();
}

Result<std::string> ExecutablePath() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return IoError("cannot find the wbs executable (/proc/self/exe)");
  return std::string(buf, static_cast<size_t>(n));
}

CLI::Option* AddInputShapeOption(CLI::App& app, std::vector<std::string>& specs) {
  return app
      .add_option("--input-shape", specs,
                  "Shape of graph input NAME (repeatable); fixes unknown dims such as a "
                  "symbolic batch, which otherwise becomes 1")
      ->type_name("NAME=DIMS")
      ->allow_extra_args(false);
}

}  // namespace wbs::cli
