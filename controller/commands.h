#pragma once
// controller/: the subcommands of the `ironboot` binary. Each takes the
// arguments after its name and returns the process exit code. main() only
// dispatches; each command checks its flags and wires the parts together.

#include <span>
#include <string>

namespace ironboot::controller {

using Args = std::span<const std::string>;

int ServeCommand(Args args);
int PlanCommand(Args args);
int MachineconfigCommand(Args args);
int ValidateCommand(Args args);
int RenderCommand(Args args);
int SecretsCommand(Args args);
int TalosconfigCommand(Args args);
int KubeconfigCommand(Args args);
int FleetCommand(Args args);
int StatusCommand(Args args);
int DemoCommand(Args args);

}  // namespace ironboot::controller
