// Counting heap allocations, for the tests that assert a steady loop allocates nothing.
//
// allocation_counter.cpp replaces the global operator new and delete (every form, on malloc and
// free) so that each allocation can be counted. Only the allocation test executables link it
// (target tapegrad_allocation_counter): each of them holds no other test, so the replacement
// touches nothing else.
#pragma once

#include <cstddef>

namespace tgtest {

/// Starts counting heap allocations (from zero).
void start_counting_allocations() noexcept;
/// Stops counting and returns how many allocations happened since start_counting_allocations().
std::size_t stop_counting_allocations() noexcept;

/// Heap allocations made while `body` runs.
template <class F>
std::size_t allocations_during(F&& body) {
  start_counting_allocations();
  body();
  return stop_counting_allocations();
}

/// Runs `iteration` `warmup` times, then counts the heap allocations of `measured` more runs.
template <class F>
std::size_t steady_allocations(F&& iteration, int warmup = 3, int measured = 20) {
  for (int i = 0; i < warmup; ++i) iteration();
  return allocations_during([&] {
    for (int i = 0; i < measured; ++i) iteration();
  });
}

}  // namespace tgtest
