// NumPy .npy reader and writer; see include/cuebm/io/npy.hpp for the accepted format.
#include "cuebm/io/npy.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <type_traits>
#include <utility>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .npy code writes and reads host memory as little-endian");

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;
constexpr size_t kAlign = 64;             // numpy's ARRAY_ALIGN
constexpr size_t kGrowthAxisDigits = 21;  // numpy's GROWTH_AXIS_MAX_DIGITS
constexpr size_t kMaxWriteDims = 32;      // numpy 1.x's NPY_MAXDIMS
constexpr size_t kMaxReadDims = 64;       // numpy 2.x's NPY_MAXDIMS
constexpr int kMaxNesting = 32;           // header literal nesting depth

[[noreturn]] void io_fail(const char* fn, const std::string& path, const std::string& what) {
  throw IoError(std::string(fn) + ": '" + path + "': " + what);
}

std::string errno_text(int err) { return std::strerror(err); }

// Python's repr of a tuple of ints: (), (5,), (3, 4).
std::string shape_repr(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

// Element count of shape, or false when it overflows max_count.
bool checked_count(const std::vector<int64_t>& shape, uint64_t max_count, uint64_t* count) {
  // A zero dimension makes the array empty whatever the other dimensions are.
  if (std::find(shape.begin(), shape.end(), int64_t{0}) != shape.end()) {
    *count = 0;
    return true;
  }
  uint64_t n = 1;
  for (int64_t d : shape) {
    const auto ud = static_cast<uint64_t>(d);
    if (n > max_count / ud) return false;
    n *= ud;
  }
  *count = n;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Writing

struct FileCloser {
  void operator()(FILE* f) const {
    if (f != nullptr) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<FILE, FileCloser>;

std::string make_header(const char* descr, const std::vector<int64_t>& shape) {
  std::string dict = std::string("{'descr': '") + descr +
                     "', 'fortran_order': False, 'shape': " + shape_repr(shape) + ", }";
  // Spare room numpy leaves so that the first axis can grow in place.
  if (!shape.empty()) {
    const size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisDigits) dict.append(kGrowthAxisDigits - digits, ' ');
  }
  const size_t prefix = kMagicLen + 2 + 2;  // magic, version, uint16 length
  const size_t hlen = dict.size() + 1;      // + '\n'
  const size_t pad = kAlign - (prefix + hlen) % kAlign;
  const size_t total_len = hlen + pad;
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(total_len & 0xff);
  out += static_cast<char>((total_len >> 8) & 0xff);
  out += dict;
  out.append(pad, ' ');
  out += '\n';
  return out;
}

void write_file_atomic(const char* fn, const std::string& path, const std::string& header,
                       const void* data, size_t nbytes) {
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) {
    const int err = errno;
    io_fail(fn, path, "cannot create temporary file '" + tmp + "': " + errno_text(err));
  }
  int err = 0;
  if (std::fwrite(header.data(), 1, header.size(), f) != header.size()) err = errno;
  if (err == 0 && nbytes > 0 && std::fwrite(data, 1, nbytes, f) != nbytes) err = errno;
  if (err == 0 && std::fflush(f) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    io_fail(fn, path, "writing temporary file '" + tmp + "' failed: " + errno_text(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    io_fail(fn, path, "cannot rename temporary file '" + tmp + "' to it: " + errno_text(err));
  }
}

template <class T>
void write_typed(const std::string& path, const T* data, const std::vector<int64_t>& shape,
                 const char* descr) {
  constexpr const char* fn = "write_npy";
  if (path.empty()) throw InvalidArgument(std::string(fn) + ": path is empty");
  if (shape.size() > kMaxWriteDims) {
    throw InvalidArgument(std::string(fn) + ": '" + path + "': shape has " +
                          std::to_string(shape.size()) + " dimensions, at most " +
                          std::to_string(kMaxWriteDims) + " are supported");
  }
  for (int64_t d : shape) {
    if (d < 0) {
      throw InvalidArgument(std::string(fn) + ": '" + path + "': negative dimension " +
                            std::to_string(d) + " in shape " + shape_repr(shape));
    }
  }
  uint64_t count = 0;
  const uint64_t max_count =
      std::min<uint64_t>(std::numeric_limits<int64_t>::max(), SIZE_MAX) / sizeof(T);
  if (!checked_count(shape, max_count, &count)) {
    throw InvalidArgument(std::string(fn) + ": '" + path + "': shape " + shape_repr(shape) +
                          " has too many elements");
  }
  if (data == nullptr && count > 0) {
    throw InvalidArgument(std::string(fn) + ": '" + path + "': data is null for shape " +
                          shape_repr(shape) + " (" + std::to_string(count) + " values)");
  }
  write_file_atomic(fn, path, make_header(descr, shape), data,
                    static_cast<size_t>(count) * sizeof(T));
}

// ---------------------------------------------------------------------------------------------
// Header parsing: a small parser for the Python literals numpy writes (dicts, tuples, lists,
// strings, integers, True/False/None).

struct PyValue {
  enum class Kind { kStr, kInt, kBool, kNone, kTuple, kList, kDict };
  Kind kind = Kind::kNone;
  std::string str;
  int64_t num = 0;
  bool flag = false;
  std::vector<PyValue> items;     // tuple and list elements, dict values
  std::vector<std::string> keys;  // dict keys, parallel to items
};

std::string py_repr(const PyValue& v) {
  switch (v.kind) {
    case PyValue::Kind::kStr:
      return "'" + v.str + "'";
    case PyValue::Kind::kInt:
      return std::to_string(v.num);
    case PyValue::Kind::kBool:
      return v.flag ? "True" : "False";
    case PyValue::Kind::kNone:
      return "None";
    case PyValue::Kind::kTuple:
    case PyValue::Kind::kList: {
      const bool tuple = v.kind == PyValue::Kind::kTuple;
      std::string s = tuple ? "(" : "[";
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) s += ", ";
        s += py_repr(v.items[i]);
      }
      if (tuple && v.items.size() == 1) s += ",";
      return s + (tuple ? ")" : "]");
    }
    case PyValue::Kind::kDict: {
      std::string s = "{";
      for (size_t i = 0; i < v.items.size(); ++i) {
        if (i > 0) s += ", ";
        s += "'" + v.keys[i] + "': " + py_repr(v.items[i]);
      }
      return s + "}";
    }
  }
  return "?";
}

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const char* fn, const std::string& path)
      : text_(text), fn_(fn), path_(path) {}

  PyValue parse_all() {
    PyValue v = parse_value(0);
    skip_space();
    if (pos_ != text_.size()) fail("unexpected text after the header dict");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string shown(text_);
    while (!shown.empty() && (shown.back() == ' ' || shown.back() == '\n')) shown.pop_back();
    if (shown.size() > 200) shown = shown.substr(0, 200) + "...";
    io_fail(fn_, path_,
            "header is not a valid dict: " + what + " at offset " + std::to_string(pos_) +
                " in \"" + shown + "\"");
  }

  void skip_space() {
    while (pos_ < text_.size() && std::strchr(" \t\n\r\f\v", text_[pos_]) != nullptr &&
           text_[pos_] != '\0') {
      ++pos_;
    }
  }

  bool at_end() const { return pos_ >= text_.size(); }

  bool starts_with_word(std::string_view word) const {
    if (text_.substr(pos_, word.size()) != word) return false;
    const size_t after = pos_ + word.size();
    if (after >= text_.size()) return true;
    const char c = text_[after];
    return !(std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  }

  PyValue parse_value(int depth) {
    if (depth > kMaxNesting) fail("literals nested too deeply");
    skip_space();
    if (at_end()) fail("unexpected end of header");
    const char c = text_[pos_];
    if (c == '{') return parse_dict(depth);
    if (c == '(') return parse_sequence(depth, ')');
    if (c == '[') return parse_sequence(depth, ']');
    if (c == '\'' || c == '"') {
      PyValue v;
      v.kind = PyValue::Kind::kStr;
      v.str = parse_string();
      return v;
    }
    if (c == '-' || c == '+' || std::isdigit(static_cast<unsigned char>(c))) return parse_int();
    PyValue v;
    if (starts_with_word("True") || starts_with_word("False")) {
      v.kind = PyValue::Kind::kBool;
      v.flag = text_[pos_] == 'T';
      pos_ += v.flag ? 4 : 5;
      return v;
    }
    if (starts_with_word("None")) {
      pos_ += 4;
      return v;
    }
    fail(std::string("unexpected character '") + c + "'");
  }

  std::string parse_string() {
    const char quote = text_[pos_++];
    std::string out;
    while (true) {
      if (at_end()) fail("unterminated string");
      char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\n') fail("unterminated string");
      if (c == '\\') {
        if (at_end()) fail("unterminated string");
        const char e = text_[pos_++];
        switch (e) {
          case 'n':
            c = '\n';
            break;
          case 't':
            c = '\t';
            break;
          case '\\':
          case '\'':
          case '"':
            c = e;
            break;
          default:
            out += '\\';
            c = e;
        }
      }
      out += c;
    }
  }

  PyValue parse_int() {
    bool negative = false;
    if (text_[pos_] == '+' || text_[pos_] == '-') {
      negative = text_[pos_] == '-';
      ++pos_;
      skip_space();
    }
    if (at_end() || !std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      fail("expected a digit");
    }
    // Accumulate as a negative number so that INT64_MIN is representable.
    int64_t value = 0;
    const size_t start = pos_;
    while (!at_end() && std::isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const int digit = text_[pos_] - '0';
      if (value < (std::numeric_limits<int64_t>::min() + digit) / 10) {
        pos_ = start;
        fail("integer overflows int64");
      }
      value = value * 10 - digit;
      ++pos_;
    }
    if (!at_end() && (text_[pos_] == 'L' || text_[pos_] == 'l')) ++pos_;  // Python 2 long
    if (!at_end() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E' ||
                      std::isalpha(static_cast<unsigned char>(text_[pos_])))) {
      fail("expected an integer");
    }
    if (!negative && value == std::numeric_limits<int64_t>::min()) {
      pos_ = start;
      fail("integer overflows int64");
    }
    PyValue v;
    v.kind = PyValue::Kind::kInt;
    v.num = negative ? value : -value;
    return v;
  }

  // A tuple or list; "(x)" without a comma is a parenthesised value, as in Python.
  PyValue parse_sequence(int depth, char close) {
    ++pos_;
    PyValue seq;
    seq.kind = close == ')' ? PyValue::Kind::kTuple : PyValue::Kind::kList;
    bool saw_comma = false;
    while (true) {
      skip_space();
      if (at_end()) fail(std::string("missing '") + close + "'");
      if (text_[pos_] == close) {
        ++pos_;
        break;
      }
      seq.items.push_back(parse_value(depth + 1));
      skip_space();
      if (at_end()) fail(std::string("missing '") + close + "'");
      if (text_[pos_] == ',') {
        saw_comma = true;
        ++pos_;
      } else if (text_[pos_] != close) {
        fail(std::string("expected ',' or '") + close + "'");
      }
    }
    if (close == ')' && seq.items.size() == 1 && !saw_comma) return std::move(seq.items[0]);
    return seq;
  }

  PyValue parse_dict(int depth) {
    ++pos_;
    PyValue dict;
    dict.kind = PyValue::Kind::kDict;
    while (true) {
      skip_space();
      if (at_end()) fail("missing '}'");
      if (text_[pos_] == '}') {
        ++pos_;
        break;
      }
      if (text_[pos_] != '\'' && text_[pos_] != '"') fail("expected a string key");
      const size_t key_pos = pos_;
      std::string key = parse_string();
      if (std::find(dict.keys.begin(), dict.keys.end(), key) != dict.keys.end()) {
        pos_ = key_pos;
        fail("duplicate key '" + key + "'");
      }
      skip_space();
      if (at_end() || text_[pos_] != ':') fail("expected ':'");
      ++pos_;
      dict.items.push_back(parse_value(depth + 1));
      dict.keys.push_back(std::move(key));
      skip_space();
      if (at_end()) fail("missing '}'");
      if (text_[pos_] == ',') {
        ++pos_;
      } else if (text_[pos_] != '}') {
        fail("expected ',' or '}'");
      }
    }
    return dict;
  }

  std::string_view text_;
  const char* fn_;
  const std::string& path_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Reading

struct NpyHeader {
  std::vector<int64_t> shape;
  bool f8 = false;
  uint64_t count = 0;
};

// Opens path, validates everything up to the data and the file size, and leaves *file positioned
// at the first data byte.
NpyHeader open_npy(const char* fn, const std::string& path, FilePtr* file) {
  FILE* raw = std::fopen(path.c_str(), "rb");
  if (raw == nullptr) {
    const int err = errno;
    io_fail(fn, path, "cannot open: " + errno_text(err));
  }
  file->reset(raw);
  struct stat st {};
  if (::fstat(::fileno(raw), &st) != 0) {
    const int err = errno;
    io_fail(fn, path, "cannot stat: " + errno_text(err));
  }
  if (S_ISDIR(st.st_mode)) io_fail(fn, path, "cannot read: it is a directory");
  if (!S_ISREG(st.st_mode)) io_fail(fn, path, "cannot read: not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);

  auto read_exact = [&](void* dst, size_t n, const std::string& what) {
    const size_t got = std::fread(dst, 1, n, raw);
    if (got == n) return;
    if (std::ferror(raw)) {
      const int err = errno;
      io_fail(fn, path, "read error in " + what + ": " + errno_text(err));
    }
    io_fail(fn, path, "truncated " + what);
  };

  unsigned char prefix[8] = {};
  const size_t got = std::fread(prefix, 1, sizeof(prefix), raw);
  if (std::ferror(raw)) {
    const int err = errno;
    io_fail(fn, path, "read error: " + errno_text(err));
  }
  const size_t cmp = std::min(got, kMagicLen);
  if (std::memcmp(prefix, kMagic, cmp) != 0) {
    static const char* hex = "0123456789abcdef";
    std::string found;
    for (size_t i = 0; i < cmp; ++i) {
      found += "\\x";
      found += hex[prefix[i] >> 4];
      found += hex[prefix[i] & 15];
    }
    io_fail(fn, path, "not a .npy file: bad magic (expected \\x93NUMPY, found \"" + found + "\")");
  }
  if (got < sizeof(prefix)) {
    io_fail(fn, path,
            "not a .npy file: only " + std::to_string(got) +
                " bytes, too short for the magic string and version");
  }
  const int major = prefix[6];
  const int minor = prefix[7];
  if (minor != 0 || major < 1 || major > 3) {
    io_fail(fn, path,
            "unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  const size_t len_bytes = major == 1 ? 2 : 4;
  unsigned char len_buf[4] = {};
  read_exact(len_buf, len_bytes, "header length field");
  uint64_t hlen = 0;
  for (size_t i = len_bytes; i-- > 0;) hlen = (hlen << 8) | len_buf[i];
  const uint64_t data_offset = sizeof(prefix) + len_bytes + hlen;
  if (file_size < data_offset) {
    io_fail(fn, path,
            "truncated header: expected " + std::to_string(hlen) + " header bytes, file has " +
                std::to_string(file_size - sizeof(prefix) - len_bytes));
  }
  std::string text(static_cast<size_t>(hlen), '\0');
  read_exact(text.data(), text.size(), "header");
  if (text.find('\0') != std::string::npos) {
    io_fail(fn, path, "header is not a valid dict: it contains a NUL byte");
  }

  const PyValue dict = HeaderParser(text, fn, path).parse_all();
  if (dict.kind != PyValue::Kind::kDict) {
    io_fail(fn, path, "header is not a valid dict: found " + py_repr(dict));
  }
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape = nullptr;
  for (size_t i = 0; i < dict.keys.size(); ++i) {
    const std::string& k = dict.keys[i];
    if (k == "descr") {
      descr = &dict.items[i];
    } else if (k == "fortran_order") {
      fortran = &dict.items[i];
    } else if (k == "shape") {
      shape = &dict.items[i];
    } else {
      io_fail(fn, path, "header is not a valid dict: unexpected key '" + k + "'");
    }
  }
  for (auto [v, name] : {std::pair{descr, "descr"}, std::pair{fortran, "fortran_order"},
                         std::pair{shape, "shape"}}) {
    if (v == nullptr) {
      io_fail(fn, path, std::string("header is not a valid dict: missing key '") + name + "'");
    }
  }

  NpyHeader h;
  if (descr->kind != PyValue::Kind::kStr || (descr->str != "<f4" && descr->str != "<f8")) {
    io_fail(fn, path, "unsupported dtype " + py_repr(*descr) + " (expected '<f4' or '<f8')");
  }
  h.f8 = descr->str == "<f8";
  if (fortran->kind != PyValue::Kind::kBool) {
    io_fail(fn, path,
            "header is not a valid dict: fortran_order is " + py_repr(*fortran) +
                ", expected True or False");
  }
  if (fortran->flag) {
    io_fail(fn, path, "fortran_order is True; only C-order arrays are supported");
  }
  if (shape->kind != PyValue::Kind::kTuple) {
    io_fail(fn, path,
            "header is not a valid dict: shape " + py_repr(*shape) + " is not a tuple of ints");
  }
  if (shape->items.size() > kMaxReadDims) {
    io_fail(fn, path,
            "shape has " + std::to_string(shape->items.size()) + " dimensions, at most " +
                std::to_string(kMaxReadDims) + " are supported");
  }
  for (const PyValue& d : shape->items) {
    if (d.kind != PyValue::Kind::kInt) {
      io_fail(fn, path,
              "header is not a valid dict: shape " + py_repr(*shape) + " is not a tuple of ints");
    }
    h.shape.push_back(d.num);
  }
  for (int64_t d : h.shape) {
    if (d < 0) {
      io_fail(fn, path,
              "negative dimension " + std::to_string(d) + " in shape " + shape_repr(h.shape));
    }
  }
  const size_t item = h.f8 ? 8 : 4;
  const uint64_t max_count =
      std::min<uint64_t>(std::numeric_limits<int64_t>::max(), SIZE_MAX) / item;
  if (!checked_count(h.shape, max_count, &h.count)) {
    io_fail(fn, path, "shape " + shape_repr(h.shape) + " has too many elements (overflow)");
  }
  const uint64_t expected = h.count * item;
  const uint64_t present = file_size - data_offset;
  const std::string what = "shape " + shape_repr(h.shape) + " of " + py_repr(*descr);
  if (present < expected) {
    io_fail(fn, path,
            "truncated data: " + what + " needs " + std::to_string(expected) +
                " bytes after the header, file has " + std::to_string(present));
  }
  if (present > expected) {
    io_fail(fn, path,
            std::to_string(present - expected) + " unexpected trailing bytes after the " +
                std::to_string(expected) + " data bytes of " + what);
  }
  return h;
}

// Reads count values of type Src from file into dst, converting to Dst.
template <class Src, class Dst>
void read_values(const char* fn, const std::string& path, FILE* file, uint64_t count, Dst* dst) {
  auto check = [&](size_t got, size_t want) {
    if (got == want) return;
    if (std::ferror(file)) {
      const int err = errno;
      io_fail(fn, path, "read error in data: " + errno_text(err));
    }
    io_fail(fn, path, "truncated data while reading (the file shrank)");
  };
  if constexpr (std::is_same_v<Src, Dst>) {
    check(std::fread(dst, sizeof(Src), static_cast<size_t>(count), file),
          static_cast<size_t>(count));
  } else {
    constexpr size_t kChunk = 1 << 14;
    std::vector<Src> buf(static_cast<size_t>(std::min<uint64_t>(count, kChunk)));
    for (uint64_t done = 0; done < count;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(count - done, kChunk));
      check(std::fread(buf.data(), sizeof(Src), n, file), n);
      for (size_t i = 0; i < n; ++i) dst[done + i] = static_cast<Dst>(buf[i]);
      done += n;
    }
  }
}

}  // namespace

void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  write_typed(path, data, shape, "<f4");
}

void write_npy(const std::string& path, const double* data, const std::vector<int64_t>& shape) {
  write_typed(path, data, shape, "<f8");
}

NpyArray read_npy(const std::string& path) {
  constexpr const char* fn = "read_npy";
  FilePtr file;
  NpyHeader h = open_npy(fn, path, &file);
  NpyArray out;
  out.data.resize(static_cast<size_t>(h.count));
  if (h.f8) {
    read_values<double>(fn, path, file.get(), h.count, out.data.data());
  } else {
    read_values<float>(fn, path, file.get(), h.count, out.data.data());
  }
  out.shape = std::move(h.shape);
  return out;
}

std::vector<double> read_npy_f64(const std::string& path, std::vector<int64_t>* shape) {
  constexpr const char* fn = "read_npy_f64";
  FilePtr file;
  NpyHeader h = open_npy(fn, path, &file);
  std::vector<double> out(static_cast<size_t>(h.count));
  if (h.f8) {
    read_values<double>(fn, path, file.get(), h.count, out.data());
  } else {
    read_values<float>(fn, path, file.get(), h.count, out.data());
  }
  if (shape != nullptr) *shape = std::move(h.shape);
  return out;
}

}  // namespace cuebm
