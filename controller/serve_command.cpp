#include <cstdio>

#include "controller/commands.h"

namespace ironboot::controller {

int ServeCommand(Args) {
  std::fprintf(stderr, "serve: under construction\n");
  return 1;
}

}  // namespace ironboot::controller
