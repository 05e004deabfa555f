// tapegrad's exceptions. Every error tapegrad raises derives from tg::Error, and its message names
// what was wrong and where (the operation, the shapes, the file and offset, ...).
#pragma once

#include <stdexcept>
#include <string>

namespace tg {

/// Base of every exception tapegrad throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value or argument outside what an operation accepts (a non-finite kink value, lo > hi in
/// clamp, a negative size, ...).
class ValueError : public Error {
 public:
  using Error::Error;
};

/// Misuse of a tape: a Var or Tensor from an earlier recording (after reset) or from another
/// thread's tape, reading a gradient before any backward sweep, overflowing the tape's index space.
class TapeError : public Error {
 public:
  using Error::Error;
};

/// Anomaly mode found the first NaN or infinity; the message names the primitive and whether it
/// appeared in the forward (value) or backward (adjoint) pass.
class AnomalyError : public Error {
 public:
  using Error::Error;
};

/// Operands whose shapes do not fit the operation; the message names the operation and the shapes.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A file that cannot be read or written, or whose contents are malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

}  // namespace tg
