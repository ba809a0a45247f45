#pragma once
// Pinned host memory: ordinary host memory, tracked so is_pinned() answers as on CUDA.
#include <c10/core/Allocator.h>

namespace biren {

c10::Allocator* pinned_allocator();
bool is_pinned_ptr(const void* ptr);

}  // namespace biren
