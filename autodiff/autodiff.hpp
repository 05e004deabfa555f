// tapegrad's autodiff: everything in one include.
#pragma once

#include <autodiff/error.hpp>
#include <autodiff/gradcheck.hpp>
#include <autodiff/rules.hpp>
#include <autodiff/subgradient.hpp>
#include <autodiff/tape.hpp>
#include <autodiff/var.hpp>
#include <autodiff/tensor.hpp>
#include <autodiff/tensor_ops.hpp>
#include <autodiff/tensor_reduce.hpp>
#include <autodiff/tensor_index.hpp>
#include <autodiff/tensor_gradcheck.hpp>
