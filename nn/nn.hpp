// tapegrad's nn: everything in one include.
#pragma once

#include <nn/checkpoint.hpp>
#include <nn/data.hpp>
#include <nn/init.hpp>
#include <nn/layers.hpp>
#include <nn/loss.hpp>
#include <nn/module.hpp>
#include <nn/optim.hpp>
#include <nn/train.hpp>
