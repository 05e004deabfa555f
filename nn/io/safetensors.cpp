#include <nn/io/safetensors.hpp>

#include <autodiff/error.hpp>
#include <nn/io/json.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <fcntl.h>
#include <fmt/format.h>
#include <set>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace tg::io {
namespace {

struct DtypeInfo {
  Dtype dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DtypeInfo, 15> kDtypes{{
    {Dtype::BOOL, "BOOL", 1},
    {Dtype::U8, "U8", 1},
    {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1},
    {Dtype::F8_E4M3, "F8_E4M3", 1},
    {Dtype::I16, "I16", 2},
    {Dtype::U16, "U16", 2},
    {Dtype::F16, "F16", 2},
    {Dtype::BF16, "BF16", 2},
    {Dtype::I32, "I32", 4},
    {Dtype::U32, "U32", 4},
    {Dtype::F32, "F32", 4},
    {Dtype::I64, "I64", 8},
    {Dtype::U64, "U64", 8},
    {Dtype::F64, "F64", 8},
}};

const DtypeInfo& info(Dtype d) noexcept { return kDtypes[static_cast<std::size_t>(d)]; }

std::string all_dtype_names() {
  std::string s;
  for (const auto& d : kDtypes) s += (s.empty() ? "" : ", ") + std::string(d.name);
  return s;
}

std::string shape_text(std::span<const std::uint64_t> shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Bytes of a tensor of this shape and dtype, or nullopt on overflow.
std::optional<std::uint64_t> byte_count(std::span<const std::uint64_t> shape, Dtype d) noexcept {
  const auto n = element_count(shape);
  if (!n) return std::nullopt;
  const std::uint64_t size = dtype_size(d);
  if (*n > UINT64_MAX / size) return std::nullopt;
  return *n * size;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const noexcept { return fd_; }

 private:
  int fd_;
};

class Loader {
 public:
  explicit Loader(const std::filesystem::path& path) : path_(path), name_(path.string()) {}

  SafetensorsFile load() {
    Fd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      throw IoError(fmt::format("cannot open '{}': {}", name_, std::generic_category().message(errno)));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      throw IoError(fmt::format("cannot stat '{}': {}", name_, std::generic_category().message(errno)));
    }
    if (!S_ISREG(st.st_mode)) fail("not a regular file");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (file_size < 8) {
      fail(fmt::format("the file is {} bytes long, too short for the 8-byte header length", file_size));
    }

    std::array<unsigned char, 8> len_bytes{};
    read_exact(fd.get(), len_bytes.data(), 8, 0, "the header length");
    std::uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | len_bytes[static_cast<std::size_t>(i)];
    if (header_len > file_size - 8) {
      fail(fmt::format("header length {} (bytes 0..8) exceeds the {} bytes that follow it in the file",
                       header_len, file_size - 8));
    }
    if (header_len > kMaxSafetensorsHeader) {
      fail(fmt::format("header length {} exceeds the limit of {} bytes", header_len, kMaxSafetensorsHeader));
    }
    if (header_len == 0) fail("header length is 0; the header must be a JSON object");

    std::string header(header_len, '\0');
    read_exact(fd.get(), header.data(), header.size(), 8, "the header");
    const json::Value root = json::parse(header, json::Source{name_, 8});
    if (!root.is_object()) {
      fail(fmt::format("the header is a JSON {}, expected an object", json::kind_name(root.kind)));
    }

    SafetensorsFile out;
    out.path = path_;
    std::vector<Entry> entries;
    for (const json::Member& m : root.members) {
      if (m.key == "__metadata__") {
        read_metadata(m.value, out.metadata);
      } else {
        entries.push_back(read_entry(m.key, m.value));
      }
    }

    const std::uint64_t data_start = 8 + header_len;
    check_layout(entries, file_size - data_start);

    for (Entry& e : entries) {
      Array a;
      a.dtype = e.dtype;
      a.shape = std::move(e.shape);
      a.data.resize(e.end - e.begin);
      read_exact(fd.get(), a.data.data(), a.data.size(), data_start + e.begin,
                 fmt::format("the data of tensor '{}'", e.name));
      out.tensors.emplace(std::move(e.name), std::move(a));
    }
    return out;
  }

 private:
  struct Entry {
    std::string name;
    Dtype dtype = Dtype::F32;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin = 0, end = 0;
    std::size_t json_offset = 0;
  };

  [[noreturn]] void fail(std::string_view what) const {
    throw IoError(fmt::format("{}: {}", name_, what));
  }

  void read_exact(int fd, void* dst, std::size_t n, std::uint64_t offset, std::string_view what) const {
    auto* p = static_cast<char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      const ssize_t k = ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
      if (k < 0) {
        if (errno == EINTR) continue;
        fail(fmt::format("read error in {} at byte {}: {}", what, offset + done,
                         std::generic_category().message(errno)));
      }
      if (k == 0) {
        fail(fmt::format("truncated: the file ended at byte {} inside {} (bytes {}..{})", offset + done,
                         what, offset, offset + n));
      }
      done += static_cast<std::size_t>(k);
    }
  }

  void read_metadata(const json::Value& v, std::map<std::string, std::string>& out) const {
    if (!v.is_object()) {
      fail(fmt::format("\"__metadata__\" at byte {} is a JSON {}, expected an object of strings",
                       v.offset, json::kind_name(v.kind)));
    }
    for (const json::Member& m : v.members) {
      if (!m.value.is_string()) {
        fail(fmt::format("metadata \"{}\" at byte {} is a JSON {}, expected a string", m.key,
                         m.value.offset, json::kind_name(m.value.kind)));
      }
      out.emplace(m.key, m.value.text);
    }
  }

  Entry read_entry(const std::string& name, const json::Value& v) const {
    Entry e;
    e.name = name;
    e.json_offset = v.offset;
    const auto where = [&] { return fmt::format("tensor '{}' (header byte {})", name, v.offset); };
    if (!v.is_object()) {
      fail(fmt::format("{} is a JSON {}, expected an object with dtype, shape and data_offsets",
                       where(), json::kind_name(v.kind)));
    }
    for (const json::Member& m : v.members) {
      if (m.key != "dtype" && m.key != "shape" && m.key != "data_offsets") {
        fail(fmt::format("{} has an unknown field \"{}\"", where(), m.key));
      }
    }
    const json::Value* dtype = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offsets = v.find("data_offsets");
    if (!dtype) fail(fmt::format("{} has no \"dtype\"", where()));
    if (!shape) fail(fmt::format("{} has no \"shape\"", where()));
    if (!offsets) fail(fmt::format("{} has no \"data_offsets\"", where()));

    if (!dtype->is_string()) {
      fail(fmt::format("{}: dtype is a JSON {}, expected a string", where(), json::kind_name(dtype->kind)));
    }
    const auto d = parse_dtype(dtype->text);
    if (!d) {
      fail(fmt::format("{}: unknown dtype \"{}\" (known: {})", where(), dtype->text, all_dtype_names()));
    }
    e.dtype = *d;

    if (!shape->is_array()) {
      fail(fmt::format("{}: shape is a JSON {}, expected an array of non-negative integers", where(),
                       json::kind_name(shape->kind)));
    }
    for (const json::Value& dim : shape->items) {
      const auto n = dim.as_uint64();
      if (!n) {
        fail(fmt::format("{}: shape entry {} at byte {} is not a non-negative integer", where(),
                         dim.is_number() ? dim.text : std::string(json::kind_name(dim.kind)), dim.offset));
      }
      e.shape.push_back(*n);
    }

    if (!offsets->is_array() || offsets->items.size() != 2) {
      fail(fmt::format("{}: data_offsets must be an array of two integers [begin, end]", where()));
    }
    const auto b = offsets->items[0].as_uint64();
    const auto en = offsets->items[1].as_uint64();
    if (!b || !en) fail(fmt::format("{}: data_offsets must be non-negative integers", where()));
    if (*b > *en) fail(fmt::format("{}: data_offsets [{}, {}] end before they begin", where(), *b, *en));
    e.begin = *b;
    e.end = *en;

    const auto bytes = byte_count(e.shape, e.dtype);
    if (!bytes) fail(fmt::format("{}: shape {} is too large", where(), shape_text(e.shape)));
    if (*bytes != e.end - e.begin) {
      fail(fmt::format("{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}", where(),
                       shape_text(e.shape), dtype_name(e.dtype), *bytes, e.begin, e.end, e.end - e.begin));
    }
    return e;
  }

  // The tensors must tile the data section exactly: sorted by offset, each begins where the
  // previous one ends, the first at 0, the last at the end of the file.
  void check_layout(std::vector<Entry>& entries, std::uint64_t data_size) const {
    std::sort(entries.begin(), entries.end(), [](const Entry& x, const Entry& y) {
      return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
    });
    std::uint64_t pos = 0;
    const Entry* prev = nullptr;
    for (const Entry& e : entries) {
      if (e.begin < pos) {
        fail(fmt::format("tensors '{}' [{}, {}] and '{}' [{}, {}] overlap in the data section",
                         prev->name, prev->begin, prev->end, e.name, e.begin, e.end));
      }
      if (e.begin > pos) {
        fail(fmt::format("gap in the data section: bytes [{}, {}) before tensor '{}' belong to no tensor",
                         pos, e.begin, e.name));
      }
      if (e.end > data_size) {
        fail(fmt::format("truncated: tensor '{}' needs data bytes [{}, {}) but the data section has only "
                         "{} bytes",
                         e.name, e.begin, e.end, data_size));
      }
      pos = e.end;
      prev = &e;
    }
    if (pos < data_size) {
      fail(fmt::format("{} trailing bytes after the last tensor's data (data section is {} bytes, "
                       "tensors cover {})",
                       data_size - pos, data_size, pos));
    }
  }

  const std::filesystem::path& path_;
  std::string name_;
};

}  // namespace

std::string_view dtype_name(Dtype dtype) noexcept { return info(dtype).name; }
std::size_t dtype_size(Dtype dtype) noexcept { return info(dtype).size; }

std::optional<Dtype> parse_dtype(std::string_view name) noexcept {
  for (const auto& d : kDtypes) {
    if (d.name == name) return d.dtype;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> element_count(std::span<const std::uint64_t> shape) noexcept {
  std::uint64_t n = 1;
  for (const std::uint64_t d : shape) {
    if (d != 0 && n > UINT64_MAX / d) {
      // Overflow, unless a later dimension is 0.
      if (std::find(shape.begin(), shape.end(), std::uint64_t{0}) != shape.end()) return 0;
      return std::nullopt;
    }
    n *= d;
  }
  return n;
}

void Array::check_dtype(Dtype wanted) const {
  if (wanted != dtype) {
    throw IoError(fmt::format("array of dtype {} read as {}", dtype_name(dtype), dtype_name(wanted)));
  }
}

const Array& SafetensorsFile::at(std::string_view name) const {
  const auto it = tensors.find(std::string(name));
  if (it != tensors.end()) return it->second;
  std::string names;
  for (const auto& [k, v] : tensors) names += (names.empty() ? "'" : ", '") + k + "'";
  throw IoError(fmt::format("{}: no tensor '{}' (the file holds {})", path.string(), name,
                            names.empty() ? "no tensors" : names));
}

void save_safetensors(const std::filesystem::path& path, std::span<const TensorView> tensors,
                      const std::map<std::string, std::string>& metadata) {
  const auto bad = [&](std::string_view what) {
    throw IoError(fmt::format("cannot save '{}': {}", path.string(), what));
  };
  std::set<std::string_view> names;
  for (const TensorView& t : tensors) {
    if (t.name.empty()) bad("a tensor has an empty name");
    if (t.name == "__metadata__") bad("\"__metadata__\" is reserved and cannot name a tensor");
    if (!json::is_valid_utf8(t.name)) bad(fmt::format("tensor name '{}' is not valid UTF-8", t.name));
    if (!names.insert(t.name).second) bad(fmt::format("two tensors are named '{}'", t.name));
    const auto bytes = byte_count(t.shape, t.dtype);
    if (!bytes) bad(fmt::format("tensor '{}': shape {} is too large", t.name, shape_text(t.shape)));
    if (*bytes != t.data.size()) {
      bad(fmt::format("tensor '{}': shape {} of {} needs {} bytes, the view has {}", t.name,
                      shape_text(t.shape), dtype_name(t.dtype), *bytes, t.data.size()));
    }
  }
  for (const auto& [k, v] : metadata) {
    if (!json::is_valid_utf8(k) || !json::is_valid_utf8(v)) {
      bad(fmt::format("metadata entry '{}' is not valid UTF-8", k));
    }
  }

  std::string header = "{";
  if (!metadata.empty()) {
    json::append_quoted(header, "__metadata__");
    header += ":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ',';
      first = false;
      json::append_quoted(header, k);
      header += ':';
      json::append_quoted(header, v);
    }
    header += '}';
  }
  std::uint64_t offset = 0;
  for (const TensorView& t : tensors) {
    if (header.size() > 1) header += ',';
    json::append_quoted(header, t.name);
    header += fmt::format(R"(:{{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", dtype_name(t.dtype),
                          fmt::format("[{}]", fmt::join(t.shape, ",")), offset, offset + t.data.size());
    offset += t.data.size();
  }
  header += '}';
  // Pad with spaces so that the data section starts 8-byte aligned (as the reference writer does).
  header.append((8 - header.size() % 8) % 8, ' ');

  write_file_atomically(path, [&](FileSink& out) {
    std::array<char, 8> len{};
    auto n = static_cast<std::uint64_t>(header.size());
    for (char& c : len) {
      c = static_cast<char>(n & 0xFF);
      n >>= 8;
    }
    out.write(std::string_view(len.data(), len.size()));
    out.write(header);
    for (const TensorView& t : tensors) out.write(t.data);
  });
}

SafetensorsFile load_safetensors(const std::filesystem::path& path) { return Loader(path).load(); }

}  // namespace tg::io
