#pragma once
// common/: names for our threads, so `top -H`, `ps -L`, gdb and perf say which
// part of ironboot a thread belongs to.

#include <string_view>

namespace ironboot {

// Names the calling thread. Linux keeps 15 characters; longer names are cut.
void SetThreadName(std::string_view name);

}  // namespace ironboot
