// NumPy .npy files: float32/float64 arrays in C order, readable and writable by numpy.load and
// numpy.save.
//
// Writing produces format version 1.0 exactly as numpy >= 1.24 writes it: the magic "\x93NUMPY",
// version bytes 1 0, a little-endian uint16 header length, then the header dict
// "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" followed by the spare spaces numpy
// reserves for growing the first axis, padded with spaces and a final '\n' so that the data starts
// at a multiple of 64 bytes. Files are written atomically: to "<path>.tmp-<pid>" in the same
// folder, then renamed over <path>; on failure the temporary file is removed.
//
// Reading accepts versions 1.0, 2.0 and 3.0, dtypes '<f4' and '<f8' only, fortran_order False,
// and any header dict with the three keys in any order, extra spaces, trailing commas and Python 2
// "L" integer suffixes. The file must hold exactly the bytes the shape asks for: a shorter file is
// reported as truncated, and trailing bytes after the data are rejected (numpy.save never writes
// them, so they mean a corrupt or mislabelled file). Only regular files are read. Every problem
// throws cuebm::IoError naming the file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cuebm {

// An array read from a .npy file. shape is empty for a 0-d (scalar) array, which holds one value;
// data holds the product of shape values in C order (last index fastest).
struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// Writes data (C order, product-of-shape values; one value when shape is empty) as dtype '<f4'.
// Throws InvalidArgument for a negative dimension, more than 32 dimensions, an element count that
// overflows, or a null data pointer with a non-zero count; IoError when the file cannot be written.
void write_npy(const std::string& path, const float* data, const std::vector<int64_t>& shape);

// As above with dtype '<f8'.
void write_npy(const std::string& path, const double* data, const std::vector<int64_t>& shape);

// Reads a '<f4' or '<f8' C-order array; '<f8' values are rounded to float32 (values beyond the
// float range become +-inf).
NpyArray read_npy(const std::string& path);

// Reads a '<f4' or '<f8' C-order array keeping double precision. When shape is not null it
// receives the array's shape.
std::vector<double> read_npy_f64(const std::string& path, std::vector<int64_t>* shape);

}  // namespace cuebm
