// Image-folder datasets: DIR/<class>/<file>.png|.pgm|.ppm.
#include <png.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>

#include "core/logging.h"
#include "data/dataset.h"

namespace wbs::data {
namespace {

namespace fs = std::filesystem;

// An image in interleaved HWC order, 8 bits per sample.
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> hwc;
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Result<Image> ReadPng(const std::string& path) {
  png_image png;
  std::memset(&png, 0, sizeof(png));
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    return ParseError("{}: cannot read PNG: {}", path, png.message);
  }
  // Gray stays one channel; palette and color images become RGB. Alpha is
  // composited onto black (the simplified API's rule for an alpha-less output).
  const bool color = (png.format & PNG_FORMAT_FLAG_COLOR) != 0;
  png.format = color ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  Image img;
  img.height = png.height;
  img.width = png.width;
  img.channels = color ? 3 : 1;
  img.hwc.resize(PNG_IMAGE_SIZE(png));
  const png_color black = {0, 0, 0};
  if (!png_image_finish_read(&png, &black, img.hwc.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    return ParseError("{}: cannot decode PNG: {}", path, msg);
  }
  return img;
}

// Binary PNM: P5 (gray) or P6 (RGB), maxval <= 255.
Result<Image> ReadPnm(const std::string& path) {
  WBS_ASSIGN_OR_RETURN(std::string b, ReadFileMaybeGzip(path));
  size_t pos = 0;
  auto skip_space_and_comments = [&] {
    while (pos < b.size()) {
      if (std::isspace(static_cast<unsigned char>(b[pos]))) {
        ++pos;
      } else if (b[pos] == '#') {
        while (pos < b.size() && b[pos] != '\n') ++pos;
      } else {
        break;
      }
    }
  };
  auto read_int = [&](int64_t* v) {
    skip_space_and_comments();
    if (pos >= b.size() || !std::isdigit(static_cast<unsigned char>(b[pos]))) return false;
    *v = 0;
    while (pos < b.size() && std::isdigit(static_cast<unsigned char>(b[pos])) && *v < (1 << 24)) {
      *v = *v * 10 + (b[pos++] - '0');
    }
    return true;
  };
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) {
    return ParseError("{}: not a binary PGM/PPM file (magic must be P5 or P6)", path);
  }
  Image img;
  img.channels = b[1] == '5' ? 1 : 3;
  pos = 2;
  int64_t maxval = 0;
  if (!read_int(&img.width) || !read_int(&img.height) || !read_int(&maxval)) {
    return ParseError("{}: bad PNM header (want width height maxval)", path);
  }
  if (img.width <= 0 || img.height <= 0 || maxval <= 0 || maxval > 255) {
    return Unimplemented("{}: PNM {}x{} maxval {}: need a positive size and maxval <= 255", path,
                         img.width, img.height, maxval);
  }
  ++pos;  // the single whitespace byte before the raster
  const size_t need = static_cast<size_t>(img.width * img.height * img.channels);
  if (pos > b.size() || b.size() - pos < need) {
    return ParseError("{}: truncated PNM raster: need {} bytes, have {}", path, need,
                      pos > b.size() ? 0 : b.size() - pos);
  }
  img.hwc.resize(need);
  for (size_t i = 0; i < need; ++i) {
    const int v = static_cast<unsigned char>(b[pos + i]);
    img.hwc[i] =
        static_cast<uint8_t>(maxval == 255 ? v : std::min(255, v * 255 / static_cast<int>(maxval)));
  }
  return img;
}

bool IsImageExtension(const std::string& ext) {
  return ext == ".png" || ext == ".pgm" || ext == ".ppm";
}

// Sorted sub-folder names and, per folder, sorted image files. Hidden
// entries are skipped; any other non-image file is an error (a stray file
// is more likely a mistake than something to ignore silently).
Result<std::vector<std::pair<std::string, std::vector<fs::path>>>> ListClasses(
    const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return NotFound("{}: not a directory", dir);
  std::vector<std::pair<std::string, std::vector<fs::path>>> classes;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name[0] == '.' || !e.is_directory()) continue;
    classes.push_back({name, {}});
  }
  if (ec) return IoError("{}: cannot list: {}", dir, ec.message());
  std::sort(classes.begin(), classes.end());
  if (classes.empty())
    return InvalidArgument("{}: no class sub-folders (want DIR/<class>/<image>)", dir);
  for (auto& [name, files] : classes) {
    const fs::path cdir = fs::path(dir) / name;
    for (const auto& e : fs::directory_iterator(cdir, ec)) {
      const std::string fname = e.path().filename().string();
      if (fname.empty() || fname[0] == '.') continue;
      if (!e.is_regular_file() || !IsImageExtension(Lower(e.path().extension().string()))) {
        return InvalidArgument("{}: not a .png/.pgm/.ppm image file", e.path().string());
      }
      files.push_back(e.path());
    }
    if (ec) return IoError("{}: cannot list: {}", cdir.string(), ec.message());
    std::sort(files.begin(), files.end());
  }
  return classes;
}

}  // namespace

Result<Dataset> LoadImageFolder(const std::string& dir) {
  WBS_ASSIGN_OR_RETURN(auto classes, ListClasses(dir));
  int64_t n = 0;
  for (const auto& c : classes) n += static_cast<int64_t>(c.second.size());
  if (n == 0) return InvalidArgument("{}: the class folders hold no images", dir);

  Dataset d;
  std::string first;  // the file that fixed the size, for the error message
  int64_t c = 0, h = 0, w = 0;
  uint8_t* out = nullptr;
  int64_t i = 0;
  for (size_t k = 0; k < classes.size(); ++k) {
    for (const fs::path& p : classes[k].second) {
      const std::string path = p.string();
      const std::string ext = Lower(p.extension().string());
      WBS_ASSIGN_OR_RETURN(Image img, ext == ".png" ? ReadPng(path) : ReadPnm(path));
      if (out == nullptr) {
        c = img.channels, h = img.height, w = img.width;
        first = path;
        d.images = Tensor(DType::kU8, {n, c, h, w});
        out = d.images.data<uint8_t>();
      } else if (img.channels != c || img.height != h || img.width != w) {
        return InvalidArgument("{}: image is {}x{} with {} channel(s) but {} is {}x{} with {}",
                               path, img.height, img.width, img.channels, first, h, w, c);
      }
      // HWC -> CHW.
      uint8_t* dst = out + i * c * h * w;
      for (int64_t ch = 0; ch < c; ++ch) {
        for (int64_t px = 0; px < h * w; ++px) dst[ch * h * w + px] = img.hwc[px * c + ch];
      }
      d.labels.push_back(static_cast<int32_t>(k));
      ++i;
    }
  }
  d.num_classes = static_cast<int>(classes.size());
  for (const auto& cl : classes) d.class_names.push_back(cl.first);
  d.source = dir;
  WBS_LOG_DEBUG("{}: {} images of {}x{}x{}, {} classes", dir, n, c, h, w, d.num_classes);
  return d;
}

}  // namespace wbs::data
